import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { spawnApp, type SpawnedApp } from "./served-app.js";

/** One timed pull of a model by a server, from its own NDJSON progress lines and /proc. */
export interface ServerPull {
  /** POST /api/pull → `success`. */
  totalMs: number;
  /** POST → `pulling manifest` (the name resolved, the file chosen from its fetched header). */
  resolveMs: number;
  /** `pulling manifest` → the first progress line with every byte written (lines come every ~100 ms). */
  bytesMs: number;
  /** That line → `success`: the rest of the hashing, fsync, installing the blob, writing the manifest. */
  finishMs: number;
  /** CPU time of the server process (all its threads, the hash worker's included) during the pull. */
  cpuMs: number;
  /**
   * The server's resident memory (VmRSS, bytes, sampled every 100 ms): just before the pull, its peak until half the
   * bytes are downloaded (the buffers of every connection filled), its peak after that (to `success`), at `success`.
   */
  rss: { before: number; firstHalf: number; secondHalf: number; after: number };
}

const RSS_SAMPLE_MS = 100;

/**
 * Spawns ai-server (bench/served-app.ts: its own process, a fresh home) with `settings` pointing it at the fake Hub,
 * pulls `warmup` untimed (loading its llama.cpp runtime, which sizes models, and warming its code paths), then
 * pulls `model` (a repository file of `size` bytes with this sha256) timed, and stops the server.
 */
export async function timeServerPull(settings: Record<string, string>, warmup: string, model: string, sha256: string): Promise<ServerPull> {
  const hfHome = await mkdtemp(path.join(os.tmpdir(), "ai-server-bench-hf-"));
  let app: SpawnedApp | undefined;
  try {
    // An empty Hugging Face home: no token, no cache that a pull could import from.
    app = await spawnApp({ HF_HOME: hfHome, HF_HUB_CACHE: "", HF_TOKEN: "", HF_TOKEN_PATH: "", ...settings }, async () => undefined);
    await pull(app.port, warmup);
    const rss = new RssSampler(app.pid);
    const cpuBefore = cpuMsOf(app.pid);
    const before = await rss.sample();
    const start = performance.now();
    const timing = await pull(app.port, model, `sha256:${sha256}`);
    const after = await rss.sample();
    rss.stop();
    const middle = start + timing.resolveMs + timing.bytesMs / 2;
    const peakOf = (samples: [number, number][]): number => Math.max(0, ...samples.map(([, bytes]) => bytes));
    return {
      ...timing,
      cpuMs: cpuMsOf(app.pid) - cpuBefore,
      rss: {
        before,
        firstHalf: peakOf(rss.samples.filter(([at]) => at < middle)),
        secondHalf: peakOf(rss.samples.filter(([at]) => at >= middle)),
        after,
      },
    };
  } finally {
    await app?.close();
    await rm(hfHome, { recursive: true, force: true });
  }
}

/** POST /api/pull (streamed, so its phases can be timed) until `success`; throws the server's error. */
async function pull(port: number, model: string, digest?: string): Promise<Omit<ServerPull, "cpuMs" | "rss">> {
  const start = performance.now();
  const response = await fetch(`http://127.0.0.1:${port}/api/pull`, { method: "POST", body: JSON.stringify({ model, stream: true }) });
  if (!response.ok || !response.body) throw new Error(`POST /api/pull ${model}: HTTP ${response.status}: ${await response.text()}`);
  let manifestAt: number | undefined;
  let bytesAt: number | undefined;
  let buffered = "";
  for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const text of lines) {
      if (text.trim() === "") continue;
      const now = performance.now();
      const line = JSON.parse(text) as { status?: string; error?: string; digest?: string; total?: number; completed?: number };
      if (line.error !== undefined) throw new Error(`POST /api/pull ${model}: ${line.error}`);
      if (line.status === "pulling manifest") manifestAt ??= now;
      if (line.digest !== undefined && line.digest === digest && line.completed === line.total) bytesAt ??= now;
      if (line.status === "success") {
        const end = now;
        const manifest = manifestAt ?? start;
        const bytes = bytesAt ?? end;
        return { totalMs: end - start, resolveMs: manifest - start, bytesMs: bytes - manifest, finishMs: end - bytes };
      }
    }
  }
  throw new Error(`POST /api/pull ${model}: the stream ended without "success"`);
}

/** VmRSS of a process every 100 ms: [performance.now(), bytes] samples. */
class RssSampler {
  readonly samples: [number, number][] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number) {
    this.timer = setInterval(() => void this.sample().catch(() => undefined), RSS_SAMPLE_MS);
  }

  async sample(): Promise<number> {
    const status = await readFile(`/proc/${this.pid}/status`, "utf8");
    const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? NaN);
    const bytes = kb * 1024;
    this.samples.push([performance.now(), bytes]);
    return bytes;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

let ticksPerSecond: number | undefined;

/** User + system CPU time of a process and all its threads so far (ms), from /proc/<pid>/stat. */
function cpuMsOf(pid: number): number {
  ticksPerSecond ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the command name: state is field 3, utime 14 and stime 15 (man 5 proc).
  return ((Number(fields[11]) + Number(fields[12])) / ticksPerSecond) * 1000;
}
