/**
 * `npm run bench`: single-stream speed of the real HTTP server's /api/generate next to node-llama-cpp called
 * directly, in the same process and run, on a generated llama model (BENCH_MODEL: 134m by default, 1b, 8b). Prints a markdown
 * report; never fails on timing.
 *
 * Then (bench/engines.ts) the same workload with AI_SERVER_ENGINE=llama-server beside the in-process engine, and
 * (bench/scheduling.ts) aggregate decode speed with 1, 4 and 8 concurrent streams and chat TTFT of turn 2 vs
 * turn 1, for each engine beside llama.cpp's llama-server (from scripts/build-llama-server.mjs) on the same GGUF, and
 * (bench/speculative.ts) speculative decoding on/off for each engine on a scripted model pair.
 *
 * First of all (bench/ui.ts), the dashboard: the size of its build (gzipped) and of what opening each page first
 * loads, and the time from navigation to a usable /ui#/models and /ui#/chat in Chromium on loopback (median of
 * BENCH_UI_REPS cold loads, default 10; skipped, saying so, without Chromium). BENCH_UI=0 skips it, BENCH_UI_ONLY=1
 * runs only it (as does `node --import tsx bench/ui.ts`).
 *
 * Then (bench/pull.ts), pulling a model from a fake Hugging Face Hub: throughput beside curl on a multi-GB
 * GGUF, parallel parts beside one stream under a per-connection rate limit, the server's memory while it downloads.
 * BENCH_PULL=0 skips it, BENCH_PULL_ONLY=1 runs only it (as does `node --import tsx bench/pull.ts`); BENCH_PULL_SIZE
 * (default 2GiB), BENCH_PULL_LIMITED_SIZE (512MiB), BENCH_PULL_RATE (20MB a second per connection), BENCH_PULL_REPS (3),
 * BENCH_PULL_INTERNET=inline (the fake Hub in the bench's process instead of its own).
 *
 * Then (bench/health.ts) GET /health and /ready latency p50/p99, idle and while every slot generates. BENCH_HEALTH=0
 * skips it, BENCH_HEALTH_ONLY=1 runs only it (as does `node --import tsx bench/health.ts`); BENCH_HEALTH_SLOTS
 * (default 4), BENCH_HEALTH_PROBES (500), BENCH_HEALTH_INTERVAL_MS (10).
 *
 * Then (bench/security-cost.ts) the cost of authentication, rate limits and the audit log per request: a short
 * generation and a cheap request on an open server, one with a key + limits, one with the audit log besides.
 * BENCH_SECURITY=0 skips it, BENCH_SECURITY_ONLY=1 runs only it (as does `node --import tsx bench/security-cost.ts`);
 * BENCH_SECURITY_REPS (default 30), BENCH_SECURITY_TOKENS (16), BENCH_SECURITY_PROBES (2000).
 *
 * Then (bench/upstream.ts) the cost of an upstream hop: ai-server → llama-server beside llama-server directly, the
 * added latency of a short request and the decode speed. BENCH_UPSTREAM=0 skips it, BENCH_UPSTREAM_ONLY=1 runs only it
 * (as does `node --import tsx bench/upstream.ts`); BENCH_UPSTREAM_REPS (default 40), BENCH_UPSTREAM_DECODE_REPS (6),
 * BENCH_UPSTREAM_TOKENS (128).
 *
 * Then (bench/agent-session.ts) a recorded 20-turn coding-agent session through /api/chat, /v1/chat/completions,
 * /v1/messages and /v1/responses (whole input, and previous_response_id), each on a fresh server: time to first token
 * and prompt tokens read vs reused per turn. BENCH_AGENT=0 skips it, BENCH_AGENT_ONLY=1 runs only it (as does
 * `node --import tsx bench/agent-session.ts`); BENCH_AGENT_TURNS (20), BENCH_AGENT_CONTEXT (16384), BENCH_AGENT_APIS
 * (chat,completions,messages,responses,responses-previous).
 *
 * Then (bench/scheduling.ts, defaults) 1, 4 and 8 concurrent streams with default settings on both sides — ai-server
 * as `npm start` runs it (automatic slots, its default engine), plain llama-server with no -np or -c — aggregate decode
 * and the spread of first tokens. BENCH_CONCURRENCY=0 skips it, BENCH_CONCURRENCY_ONLY=1 runs only it;
 * BENCH_CONCURRENCY_REPS (default 5).
 *
 * Then (bench/replicas.ts) aggregate throughput of concurrent streams on one replica called directly, the same replica
 * behind nginx with deploy/nginx.conf, and two replicas behind it (skipped, saying so, without nginx). BENCH_REPLICAS=0
 * skips it, BENCH_REPLICAS_ONLY=1 runs only it (as does `node --import tsx bench/replicas.ts`); BENCH_REPLICAS_STREAMS
 * (4), BENCH_REPLICAS_REQUESTS (4 per stream), BENCH_REPLICAS_TOKENS (64), BENCH_REPLICAS_REPS (3), BENCH_REPLICAS_THREADS (1).
 *
 * Environment: BENCH_MODEL (134m, 1b or 8b), BENCH_STREAMS (e.g. 1,8,32), BENCH_THREADS (default: the server's AI_SERVER_THREADS default), BENCH_REPS (default 10),
 * BENCH_ENGINES=0 (skip the engines part), BENCH_SPECULATIVE=0 (skip speculative decoding), BENCH_SPECULATIVE_REPS (default 3), BENCH_SCHEDULING=0 (skip the scheduling part), BENCH_SCHEDULING_REPS (default 3), BENCH_LLAMA_SERVER (binary),
 * AI_SERVER_BENCH_DIR (model cache, default $TMPDIR/ai-server-bench); other AI_SERVER_* settings apply to the server.
 */
import { readFile, stat } from "node:fs/promises";
import os from "node:os";
import { loadConfig } from "../src/config/load.js";
import { agentBenchOptions, agentSessionBench } from "./agent-session.js";
import { DirectRunner } from "./direct.js";
import { enginesBench } from "./engines.js";
import { healthBench, healthBenchOptions } from "./health.js";
import { securityBenchOptions, securityCostBench } from "./security-cost.js";
import { HttpRunner } from "./http.js";
import { cacheDir, ensureModel, modelShape, parameterCount } from "./model.js";
import { buildPrompts } from "./prompt.js";
import { pullBench, pullBenchOptions } from "./pull.js";
import { replicasBench, replicasBenchOptions } from "./replicas.js";
import { report, type Results } from "./report.js";
import { withLoopBusy, type Workload } from "./sample.js";
import { uiBench, uiBenchOptions } from "./ui.js";
import { upstreamBench, upstreamBenchOptions } from "./upstream.js";
import { speculativeBench } from "./speculative.js";
import { DEFAULT_STREAMS, schedulingBench } from "./scheduling.js";

const WORK: Workload = { promptTokens: 128, maxTokens: 128, contextSize: 512 };

const env = process.env;
const reps = positiveInt(env.BENCH_REPS, 10);
const config = loadConfig(env, {
  ...(env.BENCH_THREADS && { threads: env.BENCH_THREADS }),
  ...(!env.AI_SERVER_LOG_LEVEL && { logLevel: "warn" }),
  contextLength: WORK.contextSize,
  numParallel: 1,
  keepAliveMs: "-1",
});
const log = (message: string): void => void process.stderr.write(`${message}\n`);

// Only the cost of an upstream hop (bench/upstream.ts).
if (env.BENCH_UPSTREAM_ONLY === "1") {
  console.log(await upstreamBench(upstreamBenchOptions(env, log)));
  process.exit(0);
}

// Only the cost of auth, limits and audit per request (bench/security-cost.ts).
if (env.BENCH_SECURITY_ONLY === "1") {
  console.log(await securityCostBench(securityBenchOptions(env, log)));
  process.exit(0);
}

// Replicas behind nginx (bench/replicas.ts; BENCH_REPLICAS=0 skips it at the end, BENCH_REPLICAS_ONLY=1 runs only it).
if (env.BENCH_REPLICAS_ONLY === "1") {
  console.log(await replicasBench(replicasBenchOptions(env, log)));
  process.exit(0);
}

// The dashboard's size and time to a usable page (bench/ui.ts; BENCH_UI=0 skips it, BENCH_UI_ONLY=1 runs only it).
if (env.BENCH_UI_ONLY === "1" || (env.BENCH_UI !== "0" && ![env.BENCH_PULL_ONLY, env.BENCH_HEALTH_ONLY, env.BENCH_AGENT_ONLY, env.BENCH_CONCURRENCY_ONLY].includes("1"))) {
  log("ui: the dashboard's bundle size and time to a usable page…");
  console.log(await uiBench(uiBenchOptions(env, log)));
}
if (env.BENCH_UI_ONLY === "1") process.exit(0);

// Pulling a model (bench/pull.ts), before anything loads a model (BENCH_PULL=0 skips it, BENCH_PULL_ONLY=1 runs only it).
const concurrencyOnly = env.BENCH_CONCURRENCY_ONLY === "1";
if (env.BENCH_PULL !== "0" && env.BENCH_HEALTH_ONLY !== "1" && env.BENCH_AGENT_ONLY !== "1" && !concurrencyOnly) {
  log("pull: ai-server's pull beside curl, from a fake Hugging Face Hub…");
  console.log(await pullBench(pullBenchOptions(env, log)));
}
if (env.BENCH_PULL_ONLY === "1") process.exit(0);

// /health latency, idle and while every slot generates (bench/health.ts; BENCH_HEALTH=0 skips it, BENCH_HEALTH_ONLY=1 runs only it).
if (env.BENCH_HEALTH !== "0" && env.BENCH_AGENT_ONLY !== "1" && !concurrencyOnly) {
  log("health: /health latency, idle and while every slot generates…");
  console.log(await healthBench(healthBenchOptions(env, log)));
}
if (env.BENCH_HEALTH_ONLY === "1") process.exit(0);

// The cost of auth, rate limits and audit per request (bench/security-cost.ts; BENCH_SECURITY=0 skips it, BENCH_SECURITY_ONLY=1 runs only it).
if (env.BENCH_SECURITY !== "0" && env.BENCH_AGENT_ONLY !== "1" && !concurrencyOnly) {
  log("security: the cost of auth, rate limits and audit per request…");
  console.log(await securityCostBench(securityBenchOptions(env, log)));
}

// The added latency and decode cost of an upstream hop (bench/upstream.ts; BENCH_UPSTREAM=0 skips it, BENCH_UPSTREAM_ONLY=1 runs only it).
if (env.BENCH_UPSTREAM !== "0" && env.BENCH_AGENT_ONLY !== "1" && !concurrencyOnly) {
  log("upstream: an upstream hop beside calling llama-server directly…");
  console.log(await upstreamBench(upstreamBenchOptions(env, log)));
}

// An agent session through every API, TTFT and prefix reuse per turn (bench/agent-session.ts; BENCH_AGENT=0 skips it, BENCH_AGENT_ONLY=1 runs only it).
if (env.BENCH_AGENT !== "0" && !concurrencyOnly) {
  log("agent: a recorded agent session through each API, time to first token per turn…");
  console.log(await agentSessionBench(agentBenchOptions(env, log)));
}
if (env.BENCH_AGENT_ONLY === "1") process.exit(0);

const shape = modelShape(env);
const model = await ensureModel(cacheDir(env), shape);
if (model.generatedMs !== undefined) log(`generated ${model.path} in ${(model.generatedMs / 1000).toFixed(1)} s`);

/** Concurrent streams with default settings on both sides (BENCH_CONCURRENCY=0 skips it, BENCH_CONCURRENCY_ONLY=1 runs only it). */
const concurrencyDefaults = async (): Promise<string> => {
  log("concurrency: 1, 4 and 8 streams with default settings, ai-server beside plain llama-server…");
  const streams = env.BENCH_STREAMS ? env.BENCH_STREAMS.split(",").map((n) => positiveInt(n.trim(), 1)) : DEFAULT_STREAMS;
  return schedulingBench({ config, modelPath: model.path, reps: positiveInt(env.BENCH_CONCURRENCY_REPS, 5), streams, defaults: true, log });
};
if (env.BENCH_CONCURRENCY_ONLY === "1") {
  console.log(await concurrencyDefaults());
  process.exit(0);
}

const direct = await DirectRunner.open({ modelPath: model.path, gpu: config.gpu, threads: config.threads, contextSize: WORK.contextSize });
let server: HttpRunner | undefined;
const enginePrompts = buildPrompts(direct.vocabulary, WORK.promptTokens - 1, reps + 1);
try {
  server = await HttpRunner.open({ ...config, engine: "llama-cpp" }, model.path); // the HTTP layer over the same engine as direct
  // The prompt without BOS; LlamaCompletion prepends it on both sides.
  const [warmup, ...prompts] = buildPrompts(direct.vocabulary, WORK.promptTokens - 1, reps + 1);
  const http = server;
  const results: Results = { direct: [], server: [], client: [], busyMs: { direct: [], http: [] } };
  const runDirect = async (prompt: string): Promise<void> => {
    const { result, busyMs } = await withLoopBusy(() => direct.run(prompt, WORK));
    results.direct.push(result);
    results.busyMs.direct.push(busyMs);
  };
  const runHttp = async (prompt: string): Promise<void> => {
    const { result, busyMs } = await withLoopBusy(() => http.run(prompt, WORK));
    results.client.push(result.client);
    results.server.push(result.server);
    results.busyMs.http.push(busyMs);
  };

  log("warm-up (and the server's model load)…");
  await direct.run(warmup!, WORK);
  await http.run(warmup!, WORK);
  for (const [i, prompt] of prompts.entries()) {
    // Alternate which side goes first, to spread drift and noise from other load on the machine.
    if (i % 2 === 0) await runDirect(prompt).then(() => runHttp(prompt));
    else await runHttp(prompt).then(() => runDirect(prompt));
    const last = <T>(a: T[]): T => a[a.length - 1]!;
    log(`rep ${i + 1}/${reps}: decode tok/s direct ${last(results.direct).decodeTps.toFixed(2)}, http (client) ${last(results.client).decodeTps.toFixed(2)}`);
  }

  console.log(await header());
  console.log(report(results));
} finally {
  // The server's models and runtime, then the direct context, model and runtime (each context before its model).
  await server?.close();
  await direct.close();
}

// The same single-stream workload with AI_SERVER_ENGINE=llama-server beside the in-process engine (BENCH_ENGINES=0 skips it).
if (env.BENCH_ENGINES !== "0") {
  log("engines: in-process vs llama-server, single stream…");
  const [warmup, ...prompts] = enginePrompts;
  console.log(await enginesBench({ config, modelPath: model.path, work: WORK, warmup: warmup!, prompts, log }));
}

// Continuous batching and prefix reuse, beside llama.cpp's llama-server (its own table; BENCH_SCHEDULING=0 skips it).
if (env.BENCH_SCHEDULING !== "0") {
  log("scheduling: concurrent streams and chat turns, ai-server beside llama-server…");
  const streams = env.BENCH_STREAMS ? env.BENCH_STREAMS.split(",").map((n) => positiveInt(n.trim(), 1)) : DEFAULT_STREAMS;
  console.log(await schedulingBench({ config, modelPath: model.path, reps: positiveInt(env.BENCH_SCHEDULING_REPS, 3), streams, log }));
}
if (env.BENCH_CONCURRENCY !== "0") console.log(await concurrencyDefaults());
if (env.BENCH_REPLICAS !== "0") {
  log("replicas: one replica direct, behind nginx, and two behind nginx…");
  console.log(await replicasBench(replicasBenchOptions(env, log)));
}

async function header(): Promise<string> {
  const s = shape;
  const cpus = os.cpus();
  const version = (JSON.parse(await readFile(new URL("../node_modules/node-llama-cpp/package.json", import.meta.url), "utf8")) as { version: string }).version;
  const llama = direct.llama;
  const size = (await stat(model.path)).size;
  return [
    "## ai-server bench: HTTP /api/generate vs node-llama-cpp direct",
    "",
    `- machine: ${cpus[0]?.model ?? "unknown CPU"}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${process.platform} ${process.arch}, Node ${process.version}`,
    `- node-llama-cpp ${version} (${llama.buildType} binary, gpu: ${llama.gpu || "none"}, ${direct.gpuLayers} layers offloaded)`,
    `- threads: ${config.threads} on both sides; context ${WORK.contextSize} tokens, 1 sequence`,
    `- model: random llama, ${(parameterCount(s) / 1e6).toFixed(1)}M parameters, ${s.type} (${(size / 1e6).toFixed(0)} MB): ` +
      `n_embd ${s.nEmbd}, n_layer ${s.nLayer}, n_ff ${s.nFf}, ${s.nHead} heads${"nHeadKv" in s ? ` (${s.nHeadKv} K/V)` : ""}, vocab ${s.vocabSize}`,
    `- workload: ${WORK.promptTokens}-token raw prompt (BOS included; each repetition's prompt differs from the previous one after BOS, so 127 tokens are read), ${WORK.maxTokens} generated tokens, temperature 0; ` +
      `${reps} repetitions alternating direct/HTTP after one warm-up each; median (min–max)`,
    "",
  ].join("\n");
}

// Speculative decoding on/off with each engine, on a scripted pair (BENCH_SPECULATIVE=0 skips it).
if (env.BENCH_SPECULATIVE !== "0") {
  log("speculative: a heavy scripted model alone, with a draft, with prompt lookup…");
  console.log(await speculativeBench({ config, dir: cacheDir(env), reps: positiveInt(env.BENCH_SPECULATIVE_REPS, 3), engines: ["llama-cpp", "llama-server"], log }));
}

function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value && Number.isInteger(n) && n > 0 ? n : fallback;
}
