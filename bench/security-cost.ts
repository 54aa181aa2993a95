/**
 * The cost of authentication, rate limiting and the audit log per request (issue 17: "under 2% of a short
 * generation's time"), alone: `node --import tsx bench/security-cost.ts` (or BENCH_SECURITY_ONLY=1 npm run bench;
 * BENCH_SECURITY=0 skips it).
 *
 * Four servers, each in its own process (bench/served-app.ts) with the bench model (BENCH_MODEL, bench/model.ts):
 * 1. open: no key, no limits, no audit log (AI_SERVER_AUDIT_RETENTION=0);
 * 2. key: every request carries an inference key without limits, no audit log;
 * 3. key + limits: the key has rpm, tpm and max_parallel limits (high enough never to refuse, so that every check
 *    and charge runs), no audit log;
 * 4. key + limits + audit: the same with the audit log on (its default).
 * Measured at the client, on one keep-alive connection per server as an SDK holds it, the servers taking turns
 * (the order rotating each round) so that drift and other load on the machine fall on all of them alike:
 * - a short generation: POST /v1/chat/completions, BENCH_SECURITY_TOKENS generated tokens (default 16) at
 *   temperature 0, BENCH_SECURITY_REPS times each (default 30), every round a new prompt (the same on each server);
 * - a request that does nothing else: GET /api/version, BENCH_SECURITY_PROBES times each (default 2000, in blocks
 *   of 100), which isolates the per-request cost (a generation's noise is larger than the cost measured).
 * Besides, the in-memory limit counter alone (take + charge + release, in this process, over 10 000 principals).
 * The cost is the difference to the open server; the goal is checked with the cheap request's larger difference
 * (mean, which includes the audit log's batched writes, or p50) over the open server's p50 short generation. AI_SERVER_ENGINE and the other AI_SERVER_* settings apply to every server.
 */
import { randomBytes } from "node:crypto";
import http from "node:http";
import os from "node:os";
import { pathToFileURL } from "node:url";
import { loadConfig } from "../src/config/load.js";
import type { Config } from "../src/config/schema.js";
import { MemoryLimitCounter } from "../src/limits/memory-limit-counter.js";
import { cacheDir, ensureModel, modelShape, parameterCount } from "./model.js";
import { spawnApp, type SpawnedApp } from "./served-app.js";

const CONTEXT = 512;
const PROBE_BLOCK = 100;
/** Limits that never refuse in this bench, so that every request is checked and charged. */
const LIMITS = { rpm: 1_000_000, tpm: 1_000_000_000, max_parallel: 64 };

export interface SecurityBenchOptions {
  config: Config;
  dir: string;
  reps: number;
  tokens: number;
  probes: number;
  log: (message: string) => void;
}

/** The options from BENCH_SECURITY_* (and the servers' settings from AI_SERVER_*). */
export function securityBenchOptions(env: NodeJS.ProcessEnv, log: (message: string) => void): SecurityBenchOptions {
  const config = loadConfig(env, { ...(env.BENCH_THREADS && { threads: env.BENCH_THREADS }), ...(!env.AI_SERVER_LOG_LEVEL && { logLevel: "warn" }) });
  return {
    config,
    dir: cacheDir(env),
    reps: positiveInt(env.BENCH_SECURITY_REPS, 30),
    tokens: positiveInt(env.BENCH_SECURITY_TOKENS, 16),
    probes: positiveInt(env.BENCH_SECURITY_PROBES, 2000),
    log,
  };
}

/** One server under test and what was measured on it. */
interface Side {
  label: string;
  served: SpawnedApp;
  agent: http.Agent;
  /** The key it is called with, if any. */
  key?: string;
  generationMs: number[];
  completionTokens: number[];
  probeMs: number[];
}

export async function securityCostBench(options: SecurityBenchOptions): Promise<string> {
  const { config, log } = options;
  const loadBefore = os.loadavg()[0] ?? 0;
  const shape = modelShape();
  const model = await ensureModel(options.dir, shape);
  const settings: Record<string, string> = {
    AI_SERVER_ENGINE: config.engine,
    AI_SERVER_THREADS: String(config.threads),
    AI_SERVER_GPU: config.gpu,
    AI_SERVER_LOG_LEVEL: config.logLevel,
    AI_SERVER_NUM_PARALLEL: "1",
    AI_SERVER_CONTEXT_LENGTH: String(CONTEXT),
    AI_SERVER_KEEP_ALIVE: "-1",
    ...(config.llamaServer !== "" && { AI_SERVER_LLAMA_SERVER: config.llamaServer }),
  };
  const fill = async (store: Parameters<Parameters<typeof spawnApp>[1]>[0]): Promise<void> => {
    await store.create({ name: "bench", modelDigest: (await store.blobs.importFile(model.path)).digest });
  };
  const sides: Side[] = [];
  try {
    const configurations = [
      { label: "open (no key, no limits, no audit)", keyed: false, limits: false, audit: false },
      { label: "key", keyed: true, limits: false, audit: false },
      { label: "key + limits", keyed: true, limits: true, audit: false },
      { label: "key + limits + audit", keyed: true, limits: true, audit: true },
    ];
    for (const { label, keyed, limits, audit } of configurations) {
      log(`security: starting the "${label}" server…`);
      const adminKey = randomBytes(32).toString("base64url");
      const served = await spawnApp({ ...settings, ...(keyed && { AI_SERVER_ADMIN_KEY: adminKey }), ...(!audit && { AI_SERVER_AUDIT_RETENTION: "0" }) }, fill);
      const side: Side = { label, served, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }), generationMs: [], completionTokens: [], probeMs: [] };
      sides.push(side);
      if (keyed) {
        const created = (await call(side, "POST", "/api/keys", { name: "bench", scope: "inference", ...(limits && LIMITS) }, adminKey)) as { key: string };
        side.key = created.key;
      }
      await generate(side, "warm-up: load the model", options.tokens); // loads it
    }
    log(`security: ${options.reps} short generations on each server, taking turns…`);
    for (let round = 0; round < options.reps; round++) {
      const prompt = `Request ${round}: write one sentence about the sea.`;
      for (const side of rotated(sides, round)) {
        const start = performance.now();
        const tokens = await generate(side, prompt, options.tokens);
        side.generationMs.push(performance.now() - start);
        side.completionTokens.push(tokens);
      }
    }
    log(`security: ${options.probes} GET /api/version on each server, in blocks of ${PROBE_BLOCK}…`);
    for (let block = 0; block * PROBE_BLOCK < options.probes; block++) {
      for (const side of rotated(sides, block)) {
        for (let i = 0; i < Math.min(PROBE_BLOCK, options.probes - block * PROBE_BLOCK); i++) {
          const start = performance.now();
          await call(side, "GET", "/api/version");
          side.probeMs.push(performance.now() - start);
        }
      }
    }
    const counterNs = counterCost();
    return render(sides, options, { counterNs, engine: await engineOf(sides[0]!), modelName: `${shape.name} (${(parameterCount(shape) / 1e6).toFixed(0)}M, ${shape.type})`, loadAverage: [loadBefore, os.loadavg()[0] ?? 0] });
  } finally {
    for (const side of sides) side.agent.destroy();
    await Promise.all(sides.map((side) => side.served.close()));
  }
}

/** Nanoseconds per request of the in-memory counter alone: take, charge and release, over many principals. */
function counterCost(): number {
  const counter = new MemoryLimitCounter();
  const limits = { rpm: LIMITS.rpm, tpm: LIMITS.tpm, maxParallel: LIMITS.max_parallel };
  const principals = Array.from({ length: 10_000 }, (_, i) => `key:${i.toString(36)}`);
  const run = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const principal = principals[i % principals.length]!;
      counter.take(principal, limits);
      counter.charge(principal, limits, 100);
      counter.release(principal);
    }
  };
  run(100_000); // warm-up (JIT)
  const count = 1_000_000;
  const start = process.hrtime.bigint();
  run(count);
  return Number(process.hrtime.bigint() - start) / count;
}

/** One whole (not streamed) chat completion of `tokens` tokens; resolves to the tokens generated. */
async function generate(side: Side, prompt: string, tokens: number): Promise<number> {
  const body = { model: "bench", messages: [{ role: "user", content: prompt }], max_tokens: tokens, temperature: 0, seed: 0 };
  const answer = (await call(side, "POST", "/v1/chat/completions", body)) as { usage?: { completion_tokens?: number } };
  return answer.usage?.completion_tokens ?? 0;
}

/** A request on the side's keep-alive connection, with its key; the JSON answer (a non-2xx status throws). */
function call(side: Side, method: string, route: string, body?: unknown, key = side.key): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { "content-type": "application/json", ...(key !== undefined && { authorization: `Bearer ${key}` }) };
    const request = http.request({ host: "127.0.0.1", port: side.served.port, path: route, method, agent: side.agent, headers }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => void (text += chunk));
      response.on("end", () => {
        const status = response.statusCode ?? 0;
        if (status < 200 || status >= 300) return reject(new Error(`${side.label}: ${method} ${route}: HTTP ${status}: ${text}`));
        resolve(JSON.parse(text));
      });
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function engineOf(side: Side): Promise<string> {
  const ps = (await call(side, "GET", "/api/ps")) as { models?: Array<{ engine?: string; size_vram?: number }> };
  const loaded = ps.models?.[0];
  return `${loaded?.engine ?? "?"}${Number(loaded?.size_vram ?? 0) > 0 ? " (GPU)" : ""}`;
}

/** The sides starting at a different one each round. */
function rotated<T>(items: readonly T[], round: number): T[] {
  const start = round % items.length;
  return [...items.slice(start), ...items.slice(0, start)];
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

function render(sides: Side[], options: SecurityBenchOptions, info: { counterNs: number; engine: string; modelName: string; loadAverage: [number, number] }): string {
  const open = sides[0]!;
  const openGenP50 = percentile(open.generationMs, 50);
  const openGenMean = mean(open.generationMs);
  const openProbeP50 = percentile(open.probeMs, 50);
  const openProbeMean = mean(open.probeMs);
  const signed = (ms: number, digits: number): string => `${ms >= 0 ? "+" : ""}${ms.toFixed(digits)}`;
  const percent = (part: number, whole: number): string => `${signed((100 * part) / whole, 2)}%`;
  const rows = sides.map((side) => {
    const genMean = mean(side.generationMs);
    const genP50 = percentile(side.generationMs, 50);
    const probeMean = mean(side.probeMs);
    const probeP50 = percentile(side.probeMs, 50);
    const cost = side === open ? "—" : `${signed((probeP50 - openProbeP50) * 1000, 0)} µs (${percent(probeP50 - openProbeP50, openGenP50)})`;
    return (
      `| ${side.label} | ${genMean.toFixed(1)} | ${genP50.toFixed(1)} | ${side === open ? "1" : (genMean / openGenMean).toFixed(4)} | ${side === open ? "1" : (genP50 / openGenP50).toFixed(4)} | ` +
      `${(probeMean * 1000).toFixed(0)} | ${(probeP50 * 1000).toFixed(0)} | ${side === open ? "—" : signed((probeMean - openProbeMean) * 1000, 0) + " µs"} | ${cost} |`
    );
  });
  const worst = Math.max(...sides.slice(1).flatMap((side) => [percentile(side.probeMs, 50) - openProbeP50, mean(side.probeMs) - openProbeMean]));
  const tokens = mean(sides.flatMap((side) => side.completionTokens));
  const cpus = os.cpus();
  return [
    "",
    "## The cost of authentication, rate limits and the audit log per request",
    "",
    `- machine: ${cpus[0]?.model ?? "unknown CPU"}, ${os.availableParallelism()} cores, ${process.platform} ${process.arch}, Node ${process.version}`,
    `- servers: ${sides.length}, each in its own process, engine ${info.engine}, ${options.config.threads} thread(s), 1 slot of ${CONTEXT} tokens; model ${info.modelName}`,
    `- keyed servers: an inference key; with limits: rpm ${LIMITS.rpm}, tpm ${LIMITS.tpm}, max_parallel ${LIMITS.max_parallel} (never refusing: every request is checked and charged)`,
    `- short generation: POST /v1/chat/completions, max_tokens ${options.tokens} (${tokens.toFixed(1)} generated on average), temperature 0, ${options.reps} per server, a new prompt each round, the servers taking turns`,
    `- cheap request: GET /api/version (authenticated, counted, audited, nothing else), ${options.probes} per server in blocks of ${PROBE_BLOCK}, the servers taking turns`,
    `- timed at the client, one keep-alive connection per server; machine load (1-min load average) ${info.loadAverage[0].toFixed(2)} before, ${info.loadAverage[1].toFixed(2)} after`,
    `- the in-memory limit counter alone: ${info.counterNs.toFixed(0)} ns per request (take + charge + release, rpm + tpm + max_parallel, 10 000 principals in turn)`,
    `- goal: the per-request cost under 2% of a short generation: ${worst / openGenP50 < 0.02 ? "met" : "NOT met"} (${(worst * 1000).toFixed(0)} µs of ${openGenP50.toFixed(1)} ms = ${((100 * worst) / openGenP50).toFixed(3)}%)`,
    "",
    "| server | generation mean ms | p50 ms | mean ratio | p50 ratio | cheap request mean µs | p50 µs | cost (mean) | cost (p50, share of a generation's p50) |",
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ...rows,
  ].join("\n");
}

function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value && Number.isInteger(n) && n > 0 ? n : fallback;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(await securityCostBench(securityBenchOptions(process.env, (message) => void process.stderr.write(`${message}\n`))));
}
