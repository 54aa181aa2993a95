import { execFile } from "node:child_process";
import http from "node:http";
import os from "node:os";
import { promisify } from "node:util";
import type { Config } from "../src/config/schema.js";
import { spread } from "./sample.js";
import { freePort, spawnApp, startServer, type ServerChild, type SpawnedApp } from "./served-app.js";

/**
 * The scheduling part of `npm run bench`: continuous batching (aggregate decode speed with 1, 4 and 8 concurrent
 * streams on one model with 8 slots) and prefix reuse (time to first token of a chat's turn 2 against turn 1),
 * for ai-server over HTTP and, beside it in the same run, llama.cpp's own llama-server on the same GGUF with the
 * same threads, slots and per-slot context, driven by the same HTTP client code.
 */

/** Slots of each server: at least 8, else the most concurrent streams measured. */
const MIN_SLOTS = 8;
const CONTEXT = 512;
/** Concurrent streams measured by default (BENCH_STREAMS; e.g. 1,8,32 on a GPU). */
export const DEFAULT_STREAMS: readonly number[] = [1, 4, 8];
const GENERATED = 64;
const CHAT_REPLY_TOKENS = 16;
/** Words of the chat's system prompt (~1.5 tokens each here): turn 2 must fit a 512-token slot on both servers. */
const SYSTEM_WORDS = 200;

export interface SchedulingBenchOptions {
  config: Config;
  modelPath: string;
  reps: number;
  /** Concurrent stream counts to measure (default DEFAULT_STREAMS). */
  streams?: readonly number[];
  /**
   * Both servers as a user starts them: ai-server with its default slots and context (AI_SERVER_NUM_PARALLEL=auto),
   * on its default engine only; llama-server with no -np or -c (its own automatic slots and unified cache). Threads
   * stay set (the same on both). Otherwise every server gets the same hand-set slots and context.
   */
  defaults?: boolean;
  log: (message: string) => void;
}

/** One streamed generation, timed at the client (ms, performance.now()). */
interface Timing {
  start: number;
  first: number;
  end: number;
  tokens: number;
  /** When each streamed token arrived. */
  tokenTimes: number[];
}

interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** What both servers are asked to do. */
interface Target {
  readonly name: string;
  /** A raw streamed completion of `maxTokens` tokens at temperature 0. */
  generate(prompt: string, maxTokens: number): Promise<Timing>;
  /** A streamed chat turn; time to the first content and the reply. */
  chat(messages: ChatMessage[], maxTokens: number): Promise<{ ttftMs: number; reply: string }>;
  close(): Promise<void>;
}

interface Measured {
  /** Aggregate decode tok/s, by concurrent streams: every token over the whole window. */
  aggregate: Map<number, number[]>;
  /** Decode tok/s while all streams were decoding (after the last one's first token, before the first one ended). */
  steady: Map<number, number[]>;
  /** ms from the first stream's first token to the last stream's first token. */
  ramp: Map<number, number[]>;
  ttft1: number[];
  ttft2: number[];
}

export async function schedulingBench(options: SchedulingBenchOptions): Promise<string> {
  const { config, modelPath, reps, log } = options;
  const streams = options.streams ?? DEFAULT_STREAMS;
  const defaults = options.defaults === true;
  const slots = defaults ? undefined : Math.max(MIN_SLOTS, ...streams);
  const loadBefore = os.loadavg()[0] ?? 0;
  const binary = await findLlamaServer();
  const ours = defaults
    ? await AiServerTarget.open({ ...config, engine: "auto", ...(binary.path && { llamaServer: binary.path }) }, modelPath, undefined)
    : await AiServerTarget.open({ ...config, engine: "llama-cpp" }, modelPath, slots);
  // The same server with AI_SERVER_ENGINE=llama-server (a llama-server process behind it); absent without a build.
  const engines: AiServerTarget[] = [ours];
  if (binary.path && !defaults) {
    const other = await AiServerTarget.open({ ...config, engine: "llama-server", llamaServer: binary.path }, modelPath, slots);
    if (other.name === "ai-server (llama-server)") engines.push(other);
    else await other.close();
  }
  let reference: Target | undefined;
  let skipped: string | undefined;
  try {
    if (binary.path) reference = await LlamaServerTarget.open(binary.path, modelPath, config.threads, ours.onGpu, slots);
    else skipped = binary.reason;
  } catch (error) {
    skipped = `llama-server did not start: ${error instanceof Error ? error.message : String(error)}`;
  }
  // The random model's output is always valid UTF-8 (test/fixtures/models.ts): every server streams the same text.
  const plan = planPrompts(streams, reps);
  const targets: Target[] = reference ? [...engines, reference] : engines;
  const byStreams = (): Map<number, number[]> => new Map(streams.map((n) => [n, []]));
  const results = new Map<Target, Measured>(targets.map((t) => [t, { aggregate: byStreams(), steady: byStreams(), ramp: byStreams(), ttft1: [], ttft2: [] }]));
  try {
    for (const target of targets) await target.generate(prompt(0, 0), 2).catch(() => undefined); // warm-up
    for (let rep = 0; rep < reps; rep++) {
      for (const n of streams) {
        // Alternate which server goes first; every stream's prompt is new (no cache to reuse).
        for (const target of rotate(targets, rep)) {
          const timings = await Promise.all((plan.streams[rep]?.get(n) ?? []).map((text) => target.generate(text, GENERATED)));
          const measured = results.get(target);
          const tokens = timings.reduce((sum, t) => sum + t.tokens, 0);
          const window = Math.max(...timings.map((t) => t.end)) - Math.min(...timings.map((t) => t.first));
          measured?.aggregate.get(n)?.push(tokens / (window / 1000));
          const allStarted = Math.max(...timings.map((t) => t.first));
          const firstEnded = Math.min(...timings.map((t) => t.tokenTimes.at(-1) ?? t.end));
          const during = timings.reduce((sum, t) => sum + t.tokenTimes.filter((at) => at > allStarted && at <= firstEnded).length, 0);
          if (firstEnded > allStarted) measured?.steady.get(n)?.push(during / ((firstEnded - allStarted) / 1000));
          measured?.ramp.get(n)?.push(allStarted - Math.min(...timings.map((t) => t.first)));
        }
      }
      for (const target of rotate(targets, rep)) {
        const first: ChatMessage[] = [
          { role: "system", content: plan.systems[rep] ?? "" },
          { role: "user", content: CHAT_USER_1 },
        ];
        const turn1 = await target.chat(first, CHAT_REPLY_TOKENS);
        const turn2 = await target.chat([...first, { role: "assistant", content: turn1.reply }, { role: "user", content: CHAT_USER_2 }], CHAT_REPLY_TOKENS);
        results.get(target)?.ttft1.push(turn1.ttftMs);
        results.get(target)?.ttft2.push(turn2.ttftMs);
      }
      log(`scheduling rep ${rep + 1}/${reps} done`);
    }
    const batches = await ours.batches();
    const info = { threads: config.threads, slots, streams, reps, loadBefore, loadAfter: os.loadavg()[0] ?? 0, batches, chosen: await ours.slotsChosen() };
    return render(results, engines, reference, skipped, info);
  } finally {
    await Promise.allSettled(targets.map((t) => t.close()));
  }
}

/** `items` starting at position `by` (mod length): each repetition another target goes first. */
function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

function render(
  results: Map<Target, Measured>,
  ours: Target[],
  reference: Target | undefined,
  skipped: string | undefined,
  info: { threads: number; slots: number | undefined; streams: readonly number[]; reps: number; loadBefore: number; loadAfter: number; batches: string; chosen: string },
): string {
  const median = (values: number[] | undefined): number => (values && values.length > 0 ? spread(values).median : NaN);
  const cell = (values: number[] | undefined, digits: number): string =>
    values && values.length > 0 ? `${spread(values).median.toFixed(digits)} (${spread(values).min.toFixed(digits)}–${spread(values).max.toFixed(digits)})` : "–";
  const b = reference ? results.get(reference) : undefined;
  const ratio = (x: number, y: number): string => (Number.isFinite(x) && Number.isFinite(y) && y > 0 ? `${(x / y).toFixed(3)}×` : "–");
  const names = ours.map((t) => t.name);
  const rows = [
    `| scenario | ${names.join(" | ")} | llama-server | ${names.map((n) => `${n} vs llama-server`).join(" | ")} |`,
    `|---|${ours.map(() => "--:|").join("")}--:|${ours.map(() => "--:|").join("")}`,
  ];
  /** `higherIsBetter` undefined: no ratio (a spread of a few ms has none that means anything). */
  const row = (label: string, pick: (m: Measured | undefined) => number[] | undefined, digits: number, higherIsBetter?: boolean): void => {
    const own = ours.map((t) => pick(results.get(t)));
    const ratios = own.map((values) =>
      higherIsBetter === undefined ? "–" : higherIsBetter ? ratio(median(values), median(pick(b))) : ratio(median(pick(b)), median(values)),
    );
    rows.push(`| ${label} | ${own.map((v) => cell(v, digits)).join(" | ")} | ${cell(pick(b), digits)} | ${ratios.join(" | ")} |`);
  };
  for (const n of info.streams) row(`aggregate decode tok/s, ${n} concurrent stream${n === 1 ? "" : "s"}`, (m) => m?.aggregate.get(n), 1, true);
  for (const n of info.streams.filter((n) => n > 1)) row(`steady decode tok/s, all ${n} streams decoding`, (m) => m?.steady.get(n), 1, true);
  for (const n of info.streams.filter((n) => n > 1)) row(`first tokens of ${n} streams: spread (ms)`, (m) => m?.ramp.get(n), 0);
  row("chat TTFT turn 1 (ms)", (m) => m?.ttft1, 1, false);
  row("chat TTFT turn 2 (ms)", (m) => m?.ttft2, 1, false);
  const reuse = (t: Target | undefined): string => {
    const m = t ? results.get(t) : undefined;
    return ratio(median(m?.ttft2), median(m?.ttft1));
  };
  rows.push(`| turn 2 / turn 1 TTFT (prefix reuse) | ${ours.map(reuse).join(" | ")} | ${reuse(reference)} |${ours.map(() => " |").join("")}`);
  const most = Math.max(...info.streams);
  if (info.streams.includes(1) && most > 1) {
    const scaling = (t: Target | undefined): string => {
      const m = t ? results.get(t) : undefined;
      return ratio(median(m?.aggregate.get(most)), median(m?.aggregate.get(1)));
    };
    rows.push(`| ${most} streams / 1 stream, aggregate decode | ${ours.map(scaling).join(" | ")} | ${scaling(reference)} |${ours.map(() => " |").join("")}`);
  }
  const setup =
    info.slots === undefined
      ? `default settings on both sides: ai-server with AI_SERVER_NUM_PARALLEL and AI_SERVER_CONTEXT_LENGTH unset (${info.chosen}), llama-server with no -np or -c (its automatic slots, one unified KV cache)`
      : `${info.slots} slots of ${CONTEXT} tokens on every server`;
  return [
    "",
    info.slots === undefined
      ? "## Concurrency with default settings: ai-server vs llama.cpp's llama-server, as each starts"
      : "## Scheduling: continuous batching and prefix reuse, ai-server (each engine) vs llama.cpp's llama-server",
    "",
    `- all: the model above, ${info.threads} thread${info.threads === 1 ? "" : "s"}, ${setup}, temperature 0; each server in its own process, streaming over HTTP to the same client code in the bench process; ` +
      `${info.reps} repetitions rotating which server goes first; median (min–max)`,
    `- aggregate decode tok/s: N raw /api/generate (ai-server) or /completion (llama-server) streams started together, ${GENERATED} tokens each, ` +
      "different prompts; all tokens / (last stream's end − first stream's first token). Steady: the tokens that arrived while all N streams " +
      "were decoding / that time (the batched decode itself). Spread: how long after the first stream's first token the last stream's came " +
      "(requests that reach llama.cpp apart have their prompts read in separate steps, while the first streams decode with fewer sequences)",
    `- chat TTFT: /api/chat vs /v1/chat/completions with a ${SYSTEM_WORDS}-word system prompt (new every repetition); turn 2 sends turn 1 + its ${CHAT_REPLY_TOKENS}-token reply + a short question. ` +
      "Ratios: decode ai-server/llama-server, TTFT llama-server/ai-server (so ≥ 1.0× means ai-server is as fast or faster; the goal)",
    `- batching counters after the run (/api/ps): ${info.batches}`,
    `- machine load (1-min load average): ${info.loadBefore.toFixed(2)} before, ${info.loadAfter.toFixed(2)} after, on ${os.availableParallelism()} cores`,
    ...(skipped ? [`- llama-server column skipped: ${skipped}`] : []),
    "",
    ...rows,
  ].join("\n");
}

/** The prompts of every measured round: per repetition, N stream prompts for each N; one system prompt per chat. */
interface PromptPlan {
  streams: Array<Map<number, string[]>>;
  systems: string[];
}

const CHAT_USER_1 = "Tell me a story about the weather in Paris";
const CHAT_USER_2 = "Please reply briefly";

/** Prompts by a fixed rule: every stream of every repetition, and every repetition's system prompt, differs. */
function planPrompts(counts: readonly number[], reps: number): PromptPlan {
  const streams = Array.from({ length: reps }, (_, rep) => new Map(counts.map((n) => [n, Array.from({ length: n }, (_, i) => prompt(rep + 1, n * 100 + i))])));
  const systems = Array.from({ length: reps }, (_, rep) => prompt(rep + 1, 999, SYSTEM_WORDS));
  return { streams, systems };
}

/** `words` words from a fixed English list, starting at a word chosen by (rep, stream) so every prompt differs from its first token. */
function prompt(rep: number, stream: number, words = 24): string {
  const vocabulary = (
    "the weather in Paris is sunny today and London has rain tell me a story about a city you are a helpful respectful honest assistant " +
    "always answer as helpfully as possible if a question does not make any sense explain why instead of answering something incorrectly"
  ).split(" ");
  const start = (rep * 131 + stream * 17) % vocabulary.length;
  const out = [`story${rep}x${stream}`];
  for (let i = 0; out.length < words; i++) out.push(vocabulary[(start + i) % vocabulary.length] ?? "the");
  return out.join(" ");
}

// ------------------------------------------------------------------ ai-server

/** ai-server in its own process, as deployed (and as llama-server runs beside it): the client's work is not its thread's. */
class AiServerTarget implements Target {
  private readonly agent = new http.Agent({ keepAlive: false, maxSockets: 64 }); // cpp-httplib closes idle kept-alive sockets: a fresh one each time, on both sides

  private constructor(
    private readonly served: SpawnedApp,
    /** The engine the server really runs (after any fallback), from /api/ps. */
    private readonly engine: string,
    readonly onGpu: boolean,
  ) {}

  /** "ai-server (<engine>)". */
  get name(): string {
    return `ai-server (${this.engine})`;
  }

  /** `slots` undefined: the server's default slots and context (nothing set for them). */
  static async open(config: Config, modelPath: string, slots: number | undefined): Promise<AiServerTarget> {
    const settings: Record<string, string> = {
      AI_SERVER_ENGINE: config.engine,
      AI_SERVER_THREADS: String(config.threads),
      AI_SERVER_GPU: config.gpu,
      AI_SERVER_LOG_LEVEL: config.logLevel,
      ...(slots !== undefined && { AI_SERVER_NUM_PARALLEL: String(slots), AI_SERVER_CONTEXT_LENGTH: String(CONTEXT) }),
      AI_SERVER_KEEP_ALIVE: "-1",
      AI_SERVER_MAX_LOADED_MODELS: "1",
      ...(config.llamaServer !== "" && { AI_SERVER_LLAMA_SERVER: config.llamaServer }),
    };
    const served = await spawnApp(settings, async (store) => {
      await store.create({ name: "bench", modelDigest: (await store.blobs.importFile(modelPath)).digest });
    });
    try {
      await requestJson(served.port, "/api/generate", { model: "bench", prompt: "", stream: false }); // loads it
      const loaded = (await psModel(served.port)) ?? {};
      return new AiServerTarget(served, String(loaded.engine ?? "?"), Number(loaded.size_vram ?? 0) > 0);
    } catch (error) {
      await served.close();
      throw error;
    }
  }

  async generate(text: string, maxTokens: number): Promise<Timing> {
    const body = { model: "bench", prompt: text, raw: true, stream: true, options: { num_predict: maxTokens, temperature: 0, seed: 0 } };
    let tokens = 0;
    const timing = await streamLines(this.agent, this.served.port, "/api/generate", body, (line) => {
      const value = JSON.parse(line) as { done?: boolean; eval_count?: number; error?: string };
      if (value.error) throw new Error(value.error);
      if (value.done) tokens = value.eval_count ?? 0;
      return value.done ? "end" : "token";
    });
    return { ...timing, tokens };
  }

  async chat(messages: ChatMessage[], maxTokens: number): Promise<{ ttftMs: number; reply: string }> {
    let reply = "";
    const body = { model: "bench", messages, stream: true, options: { num_predict: maxTokens, temperature: 0, seed: 0 } };
    const timing = await streamLines(this.agent, this.served.port, "/api/chat", body, (line) => {
      const value = JSON.parse(line) as { done?: boolean; message?: { content?: string }; error?: string };
      if (value.error) throw new Error(value.error);
      reply += value.message?.content ?? "";
      return value.done ? "end" : value.message?.content ? "token" : "other";
    });
    return { ttftMs: timing.first - timing.start, reply };
  }

  /** How the loaded model's slots were chosen (/api/ps `slots` and `slots_reason`). */
  async slotsChosen(): Promise<string> {
    const model = await psModel(this.served.port);
    return `${String(model?.slots ?? "?")} slots, ${String(model?.context_length ?? "?")} tokens each: ${String(model?.slots_reason ?? "?")}`;
  }

  async batches(): Promise<string> {
    const b = (await psModel(this.served.port))?.batches as { total?: number; multi_sequence?: number; max_sequences?: number } | undefined;
    return b ? `${b.total} decode steps, ${b.multi_sequence} with several requests, up to ${b.max_sequences} in one` : "none";
  }

  async close(): Promise<void> {
    this.agent.destroy();
    await this.served.close();
  }
}

// ------------------------------------------------------------------ llama-server

class LlamaServerTarget implements Target {
  readonly name = "llama-server";
  private readonly agent = new http.Agent({ keepAlive: false, maxSockets: 64 }); // cpp-httplib closes idle kept-alive sockets: a fresh one each time, on both sides

  private constructor(
    private readonly server: ServerChild,
    private readonly port: number,
  ) {}

  /** `slots` undefined: llama-server's own defaults for slots and context. */
  static async open(binary: string, modelPath: string, threads: number, gpu: boolean, slots: number | undefined): Promise<LlamaServerTarget> {
    const port = await freePort();
    const args = ["-m", modelPath, "--host", "127.0.0.1", "--port", String(port), "-t", String(threads), "-tb", String(threads)];
    if (slots !== undefined) args.push("-np", String(slots), "-c", String(slots * CONTEXT));
    args.push("-ngl", gpu ? "999" : "0", "--no-webui");
    return new LlamaServerTarget(await startServer(binary, args, port, { startMs: 120_000, stopMs: 5_000 }), port);
  }

  async generate(text: string, maxTokens: number): Promise<Timing> {
    const body = { prompt: text, n_predict: maxTokens, temperature: 0, seed: 0, stream: true, cache_prompt: true };
    let tokens = 0;
    const timing = await streamLines(this.agent, this.port, "/completion", body, (line) => {
      if (!line.startsWith("data: ")) return "other";
      const value = JSON.parse(line.slice(6)) as { stop?: boolean; tokens_predicted?: number; timings?: { predicted_n?: number } };
      if (value.stop) tokens = value.timings?.predicted_n ?? value.tokens_predicted ?? 0;
      return value.stop ? "end" : "token";
    });
    return { ...timing, tokens };
  }

  async chat(messages: ChatMessage[], maxTokens: number): Promise<{ ttftMs: number; reply: string }> {
    let reply = "";
    const body = { messages, max_tokens: maxTokens, temperature: 0, seed: 0, stream: true };
    const timing = await streamLines(this.agent, this.port, "/v1/chat/completions", body, (line) => {
      if (!line.startsWith("data: ")) return "other";
      if (line === "data: [DONE]") return "end";
      const value = JSON.parse(line.slice(6)) as { choices?: Array<{ delta?: { content?: string | null } }> };
      const content = value.choices?.[0]?.delta?.content ?? "";
      reply += content;
      return content ? "token" : "other";
    });
    return { ttftMs: timing.first - timing.start, reply };
  }

  async close(): Promise<void> {
    this.agent.destroy();
    await this.server.stop();
  }
}

/** BENCH_LLAMA_SERVER, else the build of scripts/build-llama-server.mjs (never builds here). */
async function findLlamaServer(): Promise<{ path?: string; reason?: string }> {
  if (process.env.BENCH_LLAMA_SERVER) return { path: process.env.BENCH_LLAMA_SERVER };
  const script = new URL("../scripts/build-llama-server.mjs", import.meta.url);
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [script.pathname, "--no-build"]);
    const found = stdout.trim().split("\n").at(-1);
    return found ? { path: found } : { reason: "scripts/build-llama-server.mjs printed no path" };
  } catch {
    return { reason: "no llama-server build: run `node scripts/build-llama-server.mjs` first (or set BENCH_LLAMA_SERVER)" };
  }
}

/**
 * POSTs `body` and reads the response line by line; `classify` says which line is a token (the first one's arrival
 * is the first-token time) and which is the last. Times on performance.now(), with every token line's arrival.
 */
function streamLines(
  agent: http.Agent,
  port: number,
  route: string,
  body: unknown,
  classify: (line: string) => "token" | "end" | "other",
): Promise<{ start: number; first: number; end: number; tokenTimes: number[] }> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let first: number | undefined;
    const tokenTimes: number[] = [];
    const request = http.request({ host: "127.0.0.1", port, path: route, method: "POST", agent, headers: { "content-type": "application/json" } }, (response) => {
      let buffered = "";
      let finished = false;
      const take = (text: string, now: number): void => {
        const line = text.trim();
        if (line === "" || finished) return;
        if (response.statusCode !== 200) return reject(new Error(`${route}: HTTP ${response.statusCode}: ${line}`));
        let kind;
        try {
          kind = classify(line);
        } catch (error) {
          return reject(error);
        }
        if (kind === "token") {
          first ??= now;
          tokenTimes.push(now);
        }
        if (kind === "end") {
          finished = true;
          resolve({ start, first: first ?? now, end: now, tokenTimes });
        }
      };
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        const now = performance.now();
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf("\n")) !== -1) {
          take(buffered.slice(0, newline), now);
          buffered = buffered.slice(newline + 1);
        }
      });
      response.on("end", () => {
        take(buffered, performance.now()); // a last line without a newline
        if (!finished) reject(new Error(`${route}: stream ended without a final line (HTTP ${response.statusCode}): ${buffered}`));
      });
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(JSON.stringify(body));
  });
}

/** GETs, or POSTs `body` as JSON, and resolves to the parsed answer (rejects on a status other than 200). */
function requestJson(port: number, route: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const method = body === undefined ? "GET" : "POST";
    const request = http.request({ host: "127.0.0.1", port, path: route, method, agent: false, headers: { "content-type": "application/json" } }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => void (text += chunk));
      response.on("end", () => (response.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${route}: HTTP ${response.statusCode}: ${text}`))));
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** The loaded model's /api/ps entry. */
async function psModel(port: number): Promise<Record<string, unknown> | undefined> {
  const ps = (await requestJson(port, "/api/ps")) as { models?: Record<string, unknown>[] };
  return ps.models?.[0];
}
