import { fork, type ChildProcess } from "node:child_process";
import { pathToFileURL } from "node:url";
import { FakeCdn } from "../test/helpers/fake-cdn.js";
import { FakeHub } from "../test/helpers/fake-hub.js";

/**
 * The pull bench's internet: the fake Hugging Face Hub and its CDN (test/helpers) serving generated GGUF files from
 * disk, either in a child process of their own (default: the CDN's event loop then competes with nobody's, as a
 * real CDN's would not) or in the bench's own process.
 */

/** One file of a Hub repository, served from disk with its known sha256 (hex) and size (never hashed again). */
export interface BenchRepoFile {
  repo: string;
  path: string;
  file: string;
  sha256: string;
  size: number;
}

/** The running fakes. */
export interface PullInternet {
  /** The fake Hub's origin (HF_ENDPOINT). */
  readonly hubUrl: string;
  /** Where the fakes run. */
  readonly where: "process" | "inline";
  /** The Hub's download URL of a repository file; it redirects to the CDN, as the real Hub does. */
  resolveUrl(file: BenchRepoFile): string;
  /** Caps each CDN connection that sends this blob at `bytesPerSecond` (as CDNs cap connections, not clients). */
  limitRate(sha256: string, bytesPerSecond: number): Promise<void>;
  /** CPU time (user + system, ms) of the process the fakes run in (inline: the bench's own, its client included). */
  cpuMs(): Promise<number>;
  close(): Promise<void>;
}

/** Starts the Hub and the CDN serving `files`, in a child process (`process`) or in this one (`inline`). */
export async function startPullInternet(files: readonly BenchRepoFile[], where: "process" | "inline"): Promise<PullInternet> {
  if (where === "inline") {
    const fakes = await startFakes(files);
    return { ...fakes, where, resolveUrl: (file) => resolveUrl(fakes.hubUrl, file), cpuMs: async () => cpuMsOf(process.cpuUsage()) };
  }
  return ChildInternet.start(files);
}

interface Fakes {
  hubUrl: string;
  limitRate(sha256: string, bytesPerSecond: number): Promise<void>;
  close(): Promise<void>;
}

async function startFakes(files: readonly BenchRepoFile[]): Promise<Fakes> {
  const cdn = await FakeCdn.start();
  const repos = [...new Set(files.map((f) => f.repo))].map((id) => ({
    id,
    files: files.filter((f) => f.repo === id).map((f) => ({ path: f.path, file: f.file, sha256: f.sha256, size: f.size })),
  }));
  const hub = await FakeHub.start({ cdn, repos });
  return {
    hubUrl: hub.url,
    limitRate: async (sha256, bytesPerSecond) => cdn.setFaults({ bytesPerSecond }, sha256),
    close: async () => {
      await hub.close();
      await cdn.close();
    },
  };
}

function resolveUrl(hubUrl: string, file: BenchRepoFile): string {
  return `${hubUrl}/${file.repo}/resolve/main/${file.path.split("/").map(encodeURIComponent).join("/")}`;
}

function cpuMsOf(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000;
}

/** A call to the child and its answer, over the IPC channel. */
type Call = { id: number; method: "start"; files: BenchRepoFile[] } | { id: number; method: "limitRate"; sha256: string; bytesPerSecond: number } | { id: number; method: "cpuMs" };
type Answer = { id: number; result?: unknown; error?: string };

/** The fakes in a child process (this module, run as a script), driven over IPC. */
class ChildInternet implements PullInternet {
  readonly where = "process";
  hubUrl = "";
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();

  private constructor(private readonly child: ChildProcess) {
    child.on("message", (answer: Answer) => this.settle(answer));
    child.once("exit", (code, signal) => {
      for (const waiter of this.waiting.values()) waiter.reject(new Error(`the fake internet's process exited (${code ?? signal})`));
      this.waiting.clear();
    });
  }

  static async start(files: readonly BenchRepoFile[]): Promise<ChildInternet> {
    const child = fork(new URL(import.meta.url).pathname, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const internet = new ChildInternet(child);
    try {
      internet.hubUrl = (await internet.call({ method: "start", files: [...files] })) as string;
      return internet;
    } catch (error) {
      child.kill();
      throw error;
    }
  }

  resolveUrl(file: BenchRepoFile): string {
    return resolveUrl(this.hubUrl, file);
  }

  async limitRate(sha256: string, bytesPerSecond: number): Promise<void> {
    await this.call({ method: "limitRate", sha256, bytesPerSecond });
  }

  async cpuMs(): Promise<number> {
    return (await this.call({ method: "cpuMs" })) as number;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGTERM");
    await exited;
  }

  private call(call: DistributiveOmit<Call, "id">): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.send({ ...call, id });
    });
  }

  private settle(answer: Answer): void {
    const waiter = this.waiting.get(answer.id);
    this.waiting.delete(answer.id);
    if (answer.error !== undefined) waiter?.reject(new Error(answer.error));
    else waiter?.resolve(answer.result);
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The child's side: starts the fakes on "start", answers the other calls, exits on SIGTERM or when the bench goes. */
function serveOverIpc(): void {
  let fakes: Fakes | undefined;
  const answer = (message: Answer): void => void process.send?.(message);
  process.on("message", (call: Call) => {
    const run = async (): Promise<unknown> => {
      switch (call.method) {
        case "start":
          fakes = await startFakes(call.files);
          return fakes.hubUrl;
        case "limitRate":
          return fakes?.limitRate(call.sha256, call.bytesPerSecond);
        case "cpuMs":
          return cpuMsOf(process.cpuUsage());
      }
    };
    run().then(
      (result) => answer({ id: call.id, result }),
      (error: unknown) => answer({ id: call.id, error: error instanceof Error ? error.message : String(error) }),
    );
  });
  const stop = (): void => void (fakes?.close() ?? Promise.resolve()).finally(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("disconnect", stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) serveOverIpc();
