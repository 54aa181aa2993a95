/**
 * The /health part of `npm run bench` (issue 17: "/health stays fast while every slot is busy", goal p99 < 50 ms),
 * alone: `node --import tsx bench/health.ts` (or BENCH_HEALTH_ONLY=1 npm run bench; BENCH_HEALTH=0 skips it).
 *
 * ai-server runs in its own process (bench/served-app.ts) with the bench model (BENCH_MODEL, bench/model.ts) and
 * BENCH_HEALTH_SLOTS slots (default 4). GET /health is timed at the client, each probe on a new connection as an
 * orchestrator's would be, BENCH_HEALTH_PROBES times (default 500) every BENCH_HEALTH_INTERVAL_MS (default 10):
 * 1. idle: the model loaded, nothing else running;
 * 2. busy: every slot generating (streams restarted as they end) and as many requests again waiting in the queue.
 * GET /ready is probed the same way in both. The server's engine is AI_SERVER_ENGINE's (default auto); the other
 * AI_SERVER_* settings apply to it.
 */
import http from "node:http";
import os from "node:os";
import { pathToFileURL } from "node:url";
import { loadConfig } from "../src/config/load.js";
import type { Config } from "../src/config/schema.js";
import { cacheDir, ensureModel, modelShape, parameterCount } from "./model.js";
import { spawnApp, type SpawnedApp } from "./served-app.js";

const CONTEXT = 512;

export interface HealthBenchOptions {
  config: Config;
  /** Where the generated model is cached. */
  dir: string;
  slots: number;
  probes: number;
  intervalMs: number;
  log: (message: string) => void;
}

/** The options from BENCH_HEALTH_* (and the server's settings from AI_SERVER_*). */
export function healthBenchOptions(env: NodeJS.ProcessEnv, log: (message: string) => void): HealthBenchOptions {
  const config = loadConfig(env, { ...(env.BENCH_THREADS && { threads: env.BENCH_THREADS }), ...(!env.AI_SERVER_LOG_LEVEL && { logLevel: "warn" }) });
  return {
    config,
    dir: cacheDir(env),
    slots: positiveInt(env.BENCH_HEALTH_SLOTS, 4),
    probes: positiveInt(env.BENCH_HEALTH_PROBES, 500),
    intervalMs: positiveInt(env.BENCH_HEALTH_INTERVAL_MS, 10),
    log,
  };
}

/** Latencies of one route in one server state, in ms. */
interface Probed {
  health: number[];
  ready: number[];
}

export async function healthBench(options: HealthBenchOptions): Promise<string> {
  const { config, slots, log } = options;
  const loadBefore = os.loadavg()[0] ?? 0;
  const shape = modelShape();
  const model = await ensureModel(options.dir, shape);
  const served = await spawnApp(
    {
      AI_SERVER_ENGINE: config.engine,
      AI_SERVER_THREADS: String(config.threads),
      AI_SERVER_GPU: config.gpu,
      AI_SERVER_LOG_LEVEL: config.logLevel,
      AI_SERVER_NUM_PARALLEL: String(slots),
      AI_SERVER_CONTEXT_LENGTH: String(CONTEXT),
      AI_SERVER_KEEP_ALIVE: "-1",
      AI_SERVER_MAX_QUEUE: String(Math.max(config.maxQueue, 4 * slots)),
      ...(config.llamaServer !== "" && { AI_SERVER_LLAMA_SERVER: config.llamaServer }),
    },
    async (store) => {
      await store.create({ name: "bench", modelDigest: (await store.blobs.importFile(model.path)).digest });
    },
  );
  try {
    await requestJson(served.port, "POST", "/api/generate", { model: "bench", prompt: "", stream: false }); // loads it
    const loaded = ((await requestJson(served.port, "GET", "/api/ps")) as { models?: Array<{ engine?: string; size_vram?: number }> }).models?.[0];
    log(`health: idle, ${options.probes} probes…`);
    const idle = await probe(served, options);
    log(`health: ${slots} slots generating and ${slots} requests queued, ${options.probes} probes…`);
    const load = new Load(served.port, 2 * slots);
    let busy: Probed;
    let busyState: { running: number; waiting: number };
    try {
      await load.untilGenerating(slots);
      busy = await probe(served, options);
      busyState = await requestsNow(served.port);
    } finally {
      await load.stop();
    }
    return render({
      idle,
      busy,
      busyState,
      tokensPerSecond: load.tokensPerSecond(),
      engine: loaded?.engine ?? "?",
      onGpu: Number(loaded?.size_vram ?? 0) > 0,
      options,
      modelName: `${shape.name} (${(parameterCount(shape) / 1e6).toFixed(0)}M, ${shape.type})`,
      loadAverage: [loadBefore, os.loadavg()[0] ?? 0],
    });
  } finally {
    await served.close();
  }
}

/** GET /health and GET /ready, alternately, each on a new connection; latencies at the client. */
async function probe(served: SpawnedApp, options: HealthBenchOptions): Promise<Probed> {
  const result: Probed = { health: [], ready: [] };
  for (let i = 0; i < options.probes; i++) {
    for (const [route, into] of [["/health", result.health], ["/ready", result.ready]] as const) {
      const start = performance.now();
      const status = await getStatus(served.port, route);
      into.push(performance.now() - start);
      if (status !== 200) throw new Error(`${route} answered ${status}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
  }
  return result;
}

/**
 * `count` generation streams kept running (each restarted when it ends) until stopped: with `count` = 2 × slots,
 * every slot generates and as many requests wait.
 */
class Load {
  private readonly stopper = new AbortController();
  private readonly workers: Promise<void>[] = [];
  private readonly generating = new Set<number>();
  private tokens = 0;
  private startedAt = 0;
  private endedAt = 0;

  constructor(private readonly port: number, count: number) {
    for (let i = 0; i < count; i++) this.workers.push(this.work(i));
  }

  /** Resolves once `slots` streams have produced a token. */
  async untilGenerating(slots: number): Promise<void> {
    const deadline = Date.now() + 120_000;
    while (this.generating.size < slots) {
      if (Date.now() > deadline) throw new Error(`only ${this.generating.size} of ${slots} streams generate after 120 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    this.tokens = 0;
    this.startedAt = performance.now();
  }

  async stop(): Promise<void> {
    this.endedAt = performance.now();
    this.stopper.abort();
    await Promise.allSettled(this.workers);
  }

  /** Tokens a second streamed to the clients while measured (all streams). */
  tokensPerSecond(): number {
    return this.tokens / ((this.endedAt - this.startedAt) / 1000);
  }

  private async work(index: number): Promise<void> {
    for (let round = 0; !this.stopper.signal.aborted; round++) {
      const body = { model: "bench", prompt: `story ${index} ${round}: once upon a time`, raw: true, stream: true, options: { num_predict: 4 * CONTEXT, temperature: 0.8, seed: round } };
      await streamGenerate(this.port, body, this.stopper.signal, () => {
        this.generating.add(index);
        this.tokens++;
      }).catch((error: unknown) => {
        if (!this.stopper.signal.aborted) throw error;
      });
    }
  }
}

function streamGenerate(port: number, body: unknown, signal: AbortSignal, onToken: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: "127.0.0.1", port, path: "/api/generate", method: "POST", agent: false, headers: { "content-type": "application/json" }, signal }, (response) => {
      let buffered = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          const value = JSON.parse(line) as { done?: boolean; error?: string };
          if (value.error) return reject(new Error(value.error));
          if (!value.done) onToken();
        }
      });
      response.on("end", () => resolve());
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(JSON.stringify(body));
  });
}

function getStatus(port: number, route: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: "127.0.0.1", port, path: route, agent: false }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode ?? 0));
    });
    request.on("error", reject);
  });
}

function requestJson(port: number, method: string, route: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: "127.0.0.1", port, path: route, method, agent: false, headers: { "content-type": "application/json" } }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => void (text += chunk));
      response.on("end", () => {
        if (response.statusCode !== 200) return reject(new Error(`${route}: HTTP ${response.statusCode}: ${text}`));
        resolve(JSON.parse(text));
      });
    });
    request.on("error", reject);
    request.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Requests holding a slot and waiting, from /metrics. */
async function requestsNow(port: number): Promise<{ running: number; waiting: number }> {
  const text = await new Promise<string>((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: "/metrics", agent: false }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => void (body += chunk));
      response.on("end", () => resolve(body));
    }).on("error", reject);
  });
  const read = (name: string): number => Number(new RegExp(`^${name}\\{model="bench:latest"[^}]*\\} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  return { running: read("ai_server_num_requests_running"), waiting: read("ai_server_num_requests_waiting") };
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

function render(r: {
  idle: Probed;
  busy: Probed;
  busyState: { running: number; waiting: number };
  tokensPerSecond: number;
  engine: string;
  onGpu: boolean;
  options: HealthBenchOptions;
  modelName: string;
  /** The machine's 1-minute load average before and after. */
  loadAverage: [number, number];
}): string {
  const { options } = r;
  const row = (state: string, route: string, values: number[]): string =>
    `| ${state} | ${route} | ${values.length} | ${percentile(values, 50).toFixed(2)} | ${percentile(values, 99).toFixed(2)} | ${Math.max(...values).toFixed(2)} |`;
  const busyLabel = `${r.busyState.running} generating, ${r.busyState.waiting} waiting`;
  const p99 = percentile(r.busy.health, 99);
  const cpus = os.cpus();
  return [
    "",
    "## /health latency while every slot generates",
    "",
    `- machine: ${cpus[0]?.model ?? "unknown CPU"}, ${os.availableParallelism()} cores, ${process.platform} ${process.arch}, Node ${process.version}`,
    `- server: its own process, engine ${r.engine}${r.onGpu ? " (GPU)" : ""}, ${options.config.threads} thread(s), ${options.slots} slots of ${CONTEXT} tokens; model ${r.modelName}`,
    `- busy: ${2 * options.slots} streamed /api/generate requests kept going (each restarted when it ends): ${options.slots} generate, ${options.slots} wait in the queue; ` +
      `${r.tokensPerSecond.toFixed(1)} tokens/s streamed in all while measured`,
    `- probes: ${options.probes} of each route, one every ${options.intervalMs} ms, each on a new connection, timed at the client (in the bench's process, which also reads the streams)`,
    `- machine load (1-min load average): ${r.loadAverage[0].toFixed(2)} before, ${r.loadAverage[1].toFixed(2)} after, on ${os.availableParallelism()} cores`,
    `- goal: /health p99 < 50 ms while busy: ${p99 < 50 ? "met" : "NOT met"} (${p99.toFixed(2)} ms)`,
    "",
    "| server | route | probes | p50 ms | p99 ms | max ms |",
    "|---|---|--:|--:|--:|--:|",
    row("idle (model loaded)", "/health", r.idle.health),
    row(busyLabel, "/health", r.busy.health),
    row("idle (model loaded)", "/ready", r.idle.ready),
    row(busyLabel, "/ready", r.busy.ready),
  ].join("\n");
}

function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value && Number.isInteger(n) && n > 0 ? n : fallback;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(await healthBench(healthBenchOptions(process.env, (message) => void process.stderr.write(`${message}\n`))));
}
