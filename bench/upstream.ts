/**
 * The cost of an upstream hop (issue 20: "under 1 ms per request and 2% of decode speed"), alone:
 * `node --import tsx bench/upstream.ts` (or BENCH_UPSTREAM_ONLY=1 npm run bench; BENCH_UPSTREAM=0 skips it).
 *
 * A plain llama.cpp llama-server on the bench model (BENCH_MODEL, bench/model.ts; AI_SERVER_THREADS threads, one
 * slot), and ai-server in its own process (bench/served-app.ts) with an upstream model whose one endpoint is that
 * llama-server. The same streamed POST /v1/chat/completions (temperature 0, seed 0) goes to llama-server directly and
 * through ai-server, taking turns (which one goes first alternates each round), on a fresh connection each time on
 * both sides (llama-server closes idle kept-alive sockets); ai-server keeps its own connections to the endpoint alive.
 * - a short request: the same prompt each time (its prefix cached by llama-server), 1 generated token, until
 *   `[DONE]`: BENCH_UPSTREAM_REPS rounds (default 40); the median difference is the hop's added latency;
 * - decode: BENCH_UPSTREAM_TOKENS generated tokens (default 128), BENCH_UPSTREAM_DECODE_REPS rounds (default 6),
 *   tokens per second from the first streamed token to the last, as the client sees them.
 * Both share the machine's cores (ai-server relays while llama-server decodes), which is what a hop costs here.
 */
import { execFile } from "node:child_process";
import http from "node:http";
import os from "node:os";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { loadConfig } from "../src/config/load.js";
import type { Config } from "../src/config/schema.js";
import { cacheDir, ensureModel, modelShape, parameterCount } from "./model.js";
import { spread } from "./sample.js";
import { freePort, spawnApp, startServer, type ServerChild, type SpawnedApp } from "./served-app.js";

const CONTEXT = 1024;
const PROMPT = "You are a helpful assistant. Summarise in one sentence why the sea is salty, then name three seas of Europe.";

export interface UpstreamBenchOptions {
  config: Config;
  dir: string;
  reps: number;
  decodeReps: number;
  tokens: number;
  log: (message: string) => void;
}

/** The options from BENCH_UPSTREAM_* (and the servers' settings from AI_SERVER_*). */
export function upstreamBenchOptions(env: NodeJS.ProcessEnv, log: (message: string) => void): UpstreamBenchOptions {
  const config = loadConfig(env, { ...(env.BENCH_THREADS && { threads: env.BENCH_THREADS }), ...(!env.AI_SERVER_LOG_LEVEL && { logLevel: "warn" }) });
  return {
    config,
    dir: cacheDir(env),
    reps: positiveInt(env.BENCH_UPSTREAM_REPS, 40),
    decodeReps: positiveInt(env.BENCH_UPSTREAM_DECODE_REPS, 6),
    tokens: positiveInt(env.BENCH_UPSTREAM_TOKENS, 128),
    log,
  };
}

/** One streamed chat completion as the client saw it (ms on performance.now()). */
interface Run {
  totalMs: number;
  firstMs: number;
  tokens: number;
  /** Tokens per second between the first and the last streamed token. */
  decodeTps: number;
}

/** Where a request goes: llama-server itself, or ai-server's upstream model. */
interface Side {
  label: string;
  port: number;
  model: string;
  short: Run[];
  decode: Run[];
}

export async function upstreamBench(options: UpstreamBenchOptions): Promise<string> {
  const { config, log } = options;
  const shape = modelShape();
  const model = await ensureModel(options.dir, shape);
  const binary = config.llamaServer !== "" ? config.llamaServer : await defaultLlamaServer();
  // One core left to the hop (and the client) where there are few: as if the endpoint were on a machine of its own.
  const threads = String(Math.max(1, Math.min(config.threads, os.availableParallelism() - 1)));
  const port = await freePort();
  let llama: ServerChild | undefined;
  let served: SpawnedApp | undefined;
  try {
    log("upstream: starting llama-server and ai-server (its upstream model points at it)…");
    // --poll 0: its threads sleep between steps instead of spinning, which would take the relay's core for milliseconds.
    const args = ["-m", model.path, "--host", "127.0.0.1", "--port", String(port), "-t", threads, "-tb", threads, "--poll", "0", "-np", "1", "-c", String(CONTEXT), "--jinja", "--no-webui"];
    llama = await startServer(binary, [...args, "-ngl", config.gpu === "off" ? "0" : "999"], port, { startMs: 120_000, stopMs: 5_000 });
    const upstream = { endpoints: [{ url: `http://127.0.0.1:${port}/v1`, model: "bench", weight: 1 }], capabilities: ["completion" as const] };
    served = await spawnApp({ AI_SERVER_LOG_LEVEL: config.logLevel, AI_SERVER_KEEP_ALIVE: "-1" }, async (store) => void (await store.createUpstream({ name: "hop", upstream })));
    const sides: Side[] = [
      { label: "llama-server directly", port, model: "bench", short: [], decode: [] },
      { label: "through ai-server (upstream hop)", port: served.port, model: "hop", short: [], decode: [] },
    ];
    for (const side of sides) await chat(side, 1); // warm-up: ai-server loads the model (its health check), the prompt is cached
    log(`upstream: ${options.reps} short requests on each side, taking turns…`);
    for (let round = 0; round < options.reps; round++) for (const side of round % 2 === 0 ? sides : [...sides].reverse()) side.short.push(await chat(side, 1));
    log(`upstream: ${options.decodeReps} generations of ${options.tokens} tokens on each side, taking turns…`);
    for (let round = 0; round < options.decodeReps; round++) for (const side of round % 2 === 0 ? sides : [...sides].reverse()) side.decode.push(await chat(side, options.tokens));
    return render(sides, options, `${shape.name} (${(parameterCount(shape) / 1e6).toFixed(0)}M, ${shape.type})`, threads);
  } finally {
    await served?.close();
    await llama?.stop();
  }
}

/** A streamed chat completion of at most `maxTokens` tokens, read until `[DONE]`, on a fresh connection. */
function chat(side: Side, maxTokens: number): Promise<Run> {
  const body = JSON.stringify({ model: side.model, messages: [{ role: "user", content: PROMPT }], max_tokens: maxTokens, temperature: 0, seed: 0, stream: true });
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const times: number[] = [];
    let buffer = "";
    const request = http.request(
      { host: "127.0.0.1", port: side.port, path: "/v1/chat/completions", method: "POST", agent: false, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (response) => {
        response.setEncoding("utf8");
        if (response.statusCode !== 200) {
          response.on("data", (chunk: string) => void (buffer += chunk));
          response.on("end", () => reject(new Error(`${side.label}: HTTP ${response.statusCode}: ${buffer}`)));
          return;
        }
        response.on("data", (chunk: string) => {
          const now = performance.now();
          buffer += chunk;
          const events = buffer.split("\n\n");
          buffer = events.pop() ?? "";
          for (const event of events) {
            const data = event.replace(/^data: /, "");
            if (data === "[DONE]") continue;
            const parsed = JSON.parse(data) as { choices?: Array<{ delta?: { content?: string | null } }> };
            if ((parsed.choices?.[0]?.delta?.content ?? "") !== "") times.push(now);
          }
        });
        response.on("end", () => {
          const end = performance.now();
          const first = times[0] ?? end;
          const last = times.at(-1) ?? end;
          resolve({ totalMs: end - start, firstMs: first - start, tokens: times.length, decodeTps: times.length > 1 ? (times.length - 1) / ((last - first) / 1000) : 0 });
        });
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

function render(sides: Side[], options: UpstreamBenchOptions, modelName: string, threads: string): string {
  const [direct, hop] = sides as [Side, Side];
  const median = (runs: Run[], pick: (run: Run) => number): number => spread(runs.map(pick)).median;
  const shortDirect = median(direct.short, (r) => r.totalMs);
  const shortHop = median(hop.short, (r) => r.totalMs);
  const paired = spread(direct.short.map((r, i) => (hop.short[i]?.totalMs ?? 0) - r.totalMs));
  const tpsDirect = median(direct.decode, (r) => r.decodeTps);
  const tpsHop = median(hop.decode, (r) => r.decodeTps);
  const ttftDirect = median(direct.decode, (r) => r.firstMs);
  const ttftHop = median(hop.decode, (r) => r.firstMs);
  const cpus = os.cpus();
  return [
    "## Upstream hop: ai-server → llama-server beside llama-server directly",
    "",
    `- machine: ${cpus[0]?.model ?? "unknown CPU"}, ${os.availableParallelism()} cores, load average ${os.loadavg()[0]?.toFixed(1)}, Node ${process.version}; llama-server with ${threads} thread(s) (--poll 0), 1 slot`,
    `- model: ${modelName}; streamed /v1/chat/completions at temperature 0, a fresh client connection per request on both sides`,
    `- short request: 1 token, the same cached prompt, ${options.reps} rounds; decode: ${median(direct.decode, (r) => r.tokens)} tokens, ${options.decodeReps} rounds; medians`,
    "",
    "| | llama-server directly | through ai-server | hop |",
    "|---|---:|---:|---:|",
    `| short request, whole (ms) | ${shortDirect.toFixed(2)} | ${shortHop.toFixed(2)} | +${(shortHop - shortDirect).toFixed(2)} ms (paired median +${paired.median.toFixed(2)}, min ${paired.min.toFixed(2)}, max ${paired.max.toFixed(2)}) |`,
    `| time to first token, decode runs (ms) | ${ttftDirect.toFixed(2)} | ${ttftHop.toFixed(2)} | +${(ttftHop - ttftDirect).toFixed(2)} ms |`,
    `| decode (tokens/s at the client) | ${tpsDirect.toFixed(1)} | ${tpsHop.toFixed(1)} | ${(tpsHop / tpsDirect).toFixed(3)}× (${(((tpsHop - tpsDirect) / tpsDirect) * 100).toFixed(1)}%) |`,
    "",
  ].join("\n");
}

async function defaultLlamaServer(): Promise<string> {
  const script = new URL("../scripts/build-llama-server.mjs", import.meta.url);
  const { stdout } = await promisify(execFile)(process.execPath, [script.pathname, "--no-build"]);
  const found = stdout.trim().split("\n").at(-1);
  if (!found) throw new Error("no llama-server build: run `node scripts/build-llama-server.mjs` first (or set AI_SERVER_LLAMA_SERVER)");
  return found;
}

function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value && Number.isInteger(n) && n > 0 ? n : fallback;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  console.log(await upstreamBench(upstreamBenchOptions(process.env, (message) => void process.stderr.write(`${message}\n`))));
}
