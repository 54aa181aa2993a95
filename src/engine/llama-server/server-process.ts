import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { type AppError, EngineCrashedError, GenerationError, ModelLoadError, RequestCancelledError } from "../../domain/errors.js";
import { ServerClient } from "./client.js";
import type { ProcessRegistry } from "./process-registry.js";

/** Log kept per process for error messages (its last bytes). */
const LOG_TAIL_BYTES = 4000;
/** Longest wait, after a process exits, for the rest of its output (the pipes close with it, unless inherited). */
const LAST_WORDS_MS = 200;
/** How long a stopping process gets after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5000;

/** Every running child and its socket: killed and removed if this process exits without unloading (a crash, process.exit). */
const running = new Map<ChildProcess, string>();
process.on("exit", () => {
  for (const [child, socketPath] of running) {
    child.kill("SIGKILL");
    rmSync(socketPath, { force: true });
  }
});

export interface StartOptions {
  binary: string;
  args: string[];
  /** UNIX socket the server listens on (passed as --host); a stale file there is deleted first. */
  socketPath: string;
  /** What the process serves, for messages ("model x.gguf"). */
  label: string;
  /** The model's name in a crash's error (default: `label`). */
  model?: string;
  /** What the process is to its model, in a crash's error (default: "llama-server process"). */
  role?: string;
  /** Longest wait for GET /health to answer 200. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Records the process while it runs, so that a later start can reap it if this server dies first. */
  registry?: ProcessRegistry;
}

/**
 * One llama-server process: started, waited for until healthy, stopped (SIGTERM, then SIGKILL), its socket file
 * removed. It keeps the tail of its log, so that a failure can say why. An exit that no `stop` asked for is a crash:
 * noticed from the child's exit event at once, it ends every request on the socket (client.ts) with an
 * EngineCrashedError and resolves `crashed`.
 */
export class ServerProcess {
  readonly client: ServerClient;
  private logTail = "";
  private exitInfo?: string;
  readonly exited: Promise<void>;
  /** Resolves when the process exits without a `stop` (a crash, OOM kill, kill -9); never after a stop. */
  readonly crashed: Promise<EngineCrashedError>;
  /** Aborted when the process exits, for whatever reason: requests on its socket end then (client.ts). */
  private readonly exit = new AbortController();
  /** Set when it exited without a stop. */
  private crash?: EngineCrashedError;
  /** Resolves once the process has exited and its registry record is gone. */
  private forgotten: Promise<void>;
  private stopping?: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly socketPath: string,
    private readonly label: string,
    private readonly model: string,
    private readonly role: string,
  ) {
    this.client = new ServerClient(socketPath, () => this.gone(), this.exit.signal);
    const keep = (chunk: Buffer): void => {
      const text = chunk.toString("utf8");
      this.logTail = (this.logTail + text).slice(-LOG_TAIL_BYTES);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    let crashed: (error: EngineCrashedError) => void = () => {};
    this.crashed = new Promise((resolve) => (crashed = resolve));
    this.exited = new Promise((resolve) => {
      let done = false;
      const ended = (): void => {
        if (done) return;
        done = true;
        running.delete(child);
        if (!this.stopping) this.crash = this.crashError();
        this.exit.abort();
        if (this.crash) crashed(this.crash);
        resolve();
      };
      child.once("exit", (code, signal) => {
        this.exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`;
        // Its last words (an assertion, "out of memory") may still be in the pipes: read them first, briefly.
        const timer = setTimeout(ended, LAST_WORDS_MS);
        child.once("close", () => {
          clearTimeout(timer);
          ended();
        });
      });
      child.once("error", (error) => {
        this.exitInfo ??= `could not be started: ${error.message}`;
        ended();
      });
    });
    this.forgotten = this.exited;
  }

  /** Starts the process and resolves once it answers /health; fails with ModelLoadError (or RequestCancelledError). */
  static async start(options: StartOptions): Promise<ServerProcess> {
    if (options.signal?.aborted) throw new RequestCancelledError();
    await rm(options.socketPath, { force: true });
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("LLAMA_ARG_"))); // our flags only
    const child = spawn(options.binary, options.args, { stdio: ["ignore", "pipe", "pipe"], env });
    running.set(child, options.socketPath);
    const server = new ServerProcess(child, options.socketPath, options.label, options.model ?? options.label, options.role ?? "llama-server process");
    const { registry } = options;
    if (registry && child.pid !== undefined) {
      const pid = child.pid;
      await registry.add({ pid, binary: options.binary, socketPath: options.socketPath }).catch(() => undefined); // best effort
      server.forgotten = server.exited.then(() => registry.remove(pid)).catch(() => undefined);
    }
    const deadline = Date.now() + options.timeoutMs;
    try {
      for (;;) {
        if (options.signal?.aborted) throw new RequestCancelledError();
        if (server.exitInfo !== undefined) throw new ModelLoadError(`llama-server for ${options.label} ${server.describe()}`);
        if ((await server.client.health(2000)) === 200) return server;
        if (Date.now() > deadline) {
          throw new ModelLoadError(`llama-server for ${options.label} was not ready after ${Math.round(options.timeoutMs / 1000)} s${server.tail()}`);
        }
        await server.pause(50, options.signal);
      }
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether the process is still running. */
  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  /** Resident memory of the process (bytes, from /proc; 0 where there is no /proc or the process is gone). */
  rssBytes(): number {
    if (!this.alive || this.child.pid === undefined) return 0;
    try {
      const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${this.child.pid}/status`, "utf8"));
      return match ? Number(match[1]) * 1024 : 0;
    } catch {
      return 0;
    }
  }

  /** SIGTERM, SIGKILL after a grace period, then the registry record and socket file are removed. Safe to call twice. */
  stop(graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopping ??= (async () => {
      if (this.alive) {
        this.child.kill("SIGTERM");
        const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs).unref());
        if ((await Promise.race([this.exited, timer])) === "timeout") this.child.kill("SIGKILL");
      }
      await this.forgotten;
      await rm(this.socketPath, { force: true });
    })();
    return this.stopping;
  }

  /**
   * Why requests on the socket fail when the process is gone, after a short wait for its exit to be reported (a
   * reset connection may come first): EngineCrashedError after a crash, GenerationError while it is being stopped;
   * undefined while it runs.
   */
  private async gone(): Promise<AppError | undefined> {
    if (!this.stopping) await Promise.race([this.exited, new Promise((resolve) => setTimeout(resolve, 500).unref())]);
    if (this.crash) return this.crashError(); // a fresh error for each request
    if (this.stopping) return new GenerationError(`the ${this.role} of ${this.label} was stopped (the model is being unloaded)`);
    return this.alive ? undefined : this.crashError();
  }

  /** The error of a crash: the model, what died, how (signal or exit code), and its last log lines. */
  private crashError(): EngineCrashedError {
    const how = this.exitInfo?.startsWith("killed") ? `was ${this.exitInfo}` : this.exitInfo;
    return new EngineCrashedError(this.model, `its ${this.role} ${how ?? "exited"}${this.tail()}`);
  }

  private describe(): string {
    return `${this.exitInfo ?? "is running"}${this.tail()}`;
  }

  private tail(): string {
    const lines = this.logTail.trim().split("\n").slice(-6).join("\n");
    return lines === "" ? "" : `; its last log lines:\n${lines}`;
  }

  /** Sleeps `ms`, waking early when the process exits or `signal` aborts. */
  private async pause(ms: number, signal?: AbortSignal): Promise<void> {
    let onAbort: (() => void) | undefined;
    await Promise.race([
      this.exited,
      new Promise((resolve) => setTimeout(resolve, ms).unref()),
      new Promise<void>((resolve) => {
        onAbort = resolve;
        signal?.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}
