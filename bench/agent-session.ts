/**
 * The agent-session part of `npm run bench` (issue 16: "agent sessions stay fast"), alone:
 * `node --import tsx bench/agent-session.ts` (or BENCH_AGENT_ONLY=1 npm run bench; BENCH_AGENT=0 skips it).
 *
 * A coding agent re-sends its whole, growing conversation every turn: system prompt and tools, then the model's
 * replies, tool calls, tool results and reminders. The prefix cache must survive that, so that turn N reads only what
 * is new, on every API. This plays a recorded agent session (bench/agent-transcript.ts; BENCH_AGENT_TURNS turns,
 * default 20) through each API in turn, streaming, each on a fresh server process (so each starts cold):
 * `/api/chat` (the reference), `/v1/chat/completions`, `/v1/messages` (with Claude Code's billing header, whose hash
 * changes every request), `/v1/responses` re-sending the whole input with `store: false` (as Codex does) and
 * `/v1/responses` continuing with `previous_response_id`. Per turn: time to first token at the client, and the
 * prompt tokens read anew against those reused from the cache, from each API's usage. The model's replies are cut at
 * 16 tokens (greedy) and given back verbatim the next turn.
 *
 * The model is the bench model (BENCH_MODEL, bench/model.ts) with Qwen 2.5's chat template (tools described in the
 * system turn, calls and results rendered as `<tool_call>` / `<tool_response>` blocks, as agents' models do) and a
 * context of BENCH_AGENT_CONTEXT tokens (default 16384; turn 20 takes about 9,300): a copy of its GGUF with those two header values rewritten.
 * The server's engine is AI_SERVER_ENGINE's, llama-server when that is `auto`; BENCH_THREADS sets its threads;
 * BENCH_AGENT_APIS (e.g. `chat,messages`) picks APIs among chat, completions, messages, responses, responses-previous.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open, rename, rm, stat, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { pipeline } from "node:stream/promises";
import { loadConfig } from "../src/config/load.js";
import type { Config } from "../src/config/schema.js";
import { readGguf } from "../src/gguf/read-gguf.js";
import { QWEN25_TEMPLATE } from "../test/fixtures/models.js";
import { agentTranscript, type AgentCall, type AgentTranscript } from "./agent-transcript.js";
import { cacheDir, ensureModel, modelShape, parameterCount } from "./model.js";
import { spawnApp, type SpawnedApp } from "./served-app.js";

/** Tokens of each reply: short, so that the prompt dominates each turn's time. */
const REPLY_TOKENS = 16;
/** A turn "read more than was new" when it read more than the prompt grew by, plus this slack. */
const SLACK_TOKENS = 2;

export interface AgentBenchOptions {
  config: Config;
  /** Where the generated models are cached. */
  dir: string;
  turns: number;
  contextSize: number;
  apis: readonly ApiName[];
  log: (message: string) => void;
}

/** The options from BENCH_AGENT_* and BENCH_THREADS (and the server's settings from AI_SERVER_*). */
export function agentBenchOptions(env: NodeJS.ProcessEnv, log: (message: string) => void): AgentBenchOptions {
  const config = loadConfig(env, { ...(env.BENCH_THREADS && { threads: env.BENCH_THREADS }), ...(!env.AI_SERVER_LOG_LEVEL && { logLevel: "warn" }) });
  const names = env.BENCH_AGENT_APIS ? env.BENCH_AGENT_APIS.split(",").map((name) => name.trim()) : API_NAMES;
  const unknown = names.filter((name) => !(API_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`BENCH_AGENT_APIS: unknown ${unknown.join(", ")}; expected some of ${API_NAMES.join(", ")}`);
  return {
    config,
    dir: cacheDir(env),
    turns: positiveInt(env.BENCH_AGENT_TURNS, 20),
    contextSize: positiveInt(env.BENCH_AGENT_CONTEXT, 16384),
    apis: names as ApiName[],
    log,
  };
}

/** What one turn measured. Token counts are those the API's usage gives (undefined where it gives none). */
interface TurnResult {
  ttftMs: number;
  /** The whole prompt. */
  promptTokens?: number;
  /** Read anew (not reused from the cache). */
  readTokens?: number;
  reply: string;
}

interface SessionResult {
  api: Api;
  turns: TurnResult[];
  engine: string;
  /** Why the session stopped early, if it did. */
  error?: string;
}

export async function agentSessionBench(options: AgentBenchOptions): Promise<string> {
  const { config, log } = options;
  const loadBefore = os.loadavg()[0] ?? 0;
  const shape = modelShape();
  const base = await ensureModel(options.dir, shape);
  const modelPath = await agentModel(base.path, options.contextSize);
  const transcript = agentTranscript(options.turns);
  const sessions: SessionResult[] = [];
  for (const name of options.apis) {
    const api = APIS[name];
    log(`agent: ${api.label}, ${options.turns} turns on a fresh server…`);
    sessions.push(await runSession(api, transcript, modelPath, options));
  }
  return render(sessions, transcript, {
    options,
    engineSetting: engineOf(config),
    modelName: `${shape.name} (${(parameterCount(shape) / 1e6).toFixed(0)}M, ${shape.type}, random weights)`,
    loadAverage: [loadBefore, os.loadavg()[0] ?? 0],
  });
}

/** The engine the bench runs: AI_SERVER_ENGINE's, llama-server (the product's) in place of `auto`. */
function engineOf(config: Config): string {
  return config.engine === "auto" ? "llama-server" : config.engine;
}

/** Plays the transcript through `api` on a server of its own, loaded before the first turn. */
async function runSession(api: Api, transcript: AgentTranscript, modelPath: string, options: AgentBenchOptions): Promise<SessionResult> {
  const { config } = options;
  const served = await spawnApp(
    {
      AI_SERVER_ENGINE: engineOf(config),
      AI_SERVER_THREADS: String(config.threads),
      AI_SERVER_GPU: config.gpu,
      AI_SERVER_LOG_LEVEL: config.logLevel,
      AI_SERVER_NUM_PARALLEL: "1",
      AI_SERVER_CONTEXT_LENGTH: String(options.contextSize),
      AI_SERVER_KEEP_ALIVE: "-1",
      ...(config.llamaServer !== "" && { AI_SERVER_LLAMA_SERVER: config.llamaServer }),
    },
    async (store) => {
      await store.create({ name: "bench", modelDigest: (await store.blobs.importFile(modelPath)).digest });
    },
  );
  const result: SessionResult = { api, turns: [], engine: "?" };
  try {
    await requestJson(served.port, "POST", "/api/generate", { model: "bench", prompt: "", stream: false }); // loads it
    const ps = (await requestJson(served.port, "GET", "/api/ps")) as { models?: Array<{ engine?: string }> };
    result.engine = ps.models?.[0]?.engine ?? "?";
    const replies: string[] = [];
    let previousId: string | undefined;
    for (let turn = 0; turn < options.turns; turn++) {
      const measured = await streamTurn(served, api, api.body(transcript, turn, replies, previousId));
      result.turns.push(measured.turn);
      replies.push(measured.turn.reply);
      previousId = measured.responseId;
      options.log(`agent: ${api.label} turn ${turn + 1}: TTFT ${measured.turn.ttftMs.toFixed(0)} ms, read ${measured.turn.readTokens ?? "?"} of ${measured.turn.promptTokens ?? "?"}`);
    }
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    options.log(`agent: ${api.label} stopped: ${result.error}`);
  } finally {
    await served.close();
  }
  return result;
}

// ------------------------------------------------------------------ the APIs

const API_NAMES = ["chat", "completions", "messages", "responses", "responses-previous"] as const;
type ApiName = (typeof API_NAMES)[number];

/** What one streamed turn said, gathered event by event. */
interface Reading {
  text: string;
  promptTokens?: number;
  readTokens?: number;
  responseId?: string;
  error?: string;
}

/** One API, as an agent drives it. */
interface Api {
  label: string;
  route: string;
  headers?: Record<string, string>;
  /** Why its prompt differs from the same conversation's through /v1/chat/completions, when it does by design. */
  promptNote?: string;
  /** What to say in the report about how its usage was read. */
  usage: string;
  /** The request of turn `turn` (0-based): the transcript up to it, with the replies of the earlier turns. */
  body(transcript: AgentTranscript, turn: number, replies: readonly string[], previousId: string | undefined): unknown;
  /** Takes one streamed event (an NDJSON line, or an SSE `data:` line's JSON); true when it carried reply text. */
  read(event: unknown, into: Reading): boolean;
}

/** The value at `keys` inside a parsed JSON value (undefined where the path does not exist). */
function field(value: unknown, ...keys: Array<string | number>): unknown {
  let at = value;
  for (const key of keys) at = typeof at === "object" && at !== null ? (at as Record<string | number, unknown>)[key] : undefined;
  return at;
}

const textAt = (value: unknown, ...keys: Array<string | number>): string => {
  const found = field(value, ...keys);
  return typeof found === "string" ? found : "";
};

const countAt = (value: unknown, ...keys: Array<string | number>): number | undefined => {
  const found = field(value, ...keys);
  return typeof found === "number" ? found : undefined;
};

/** Each earlier turn's reply, the step's call and result, and its reminder, in the order an agent sends them. */
function history<T>(transcript: AgentTranscript, turn: number, replies: readonly string[], each: (reply: string, call: AgentCall, result: string, reminder: string) => T[]): T[] {
  return transcript.steps.slice(0, turn).flatMap((step, j) => each(replies[j] ?? "", step.call, step.result, step.reminder));
}

const sampling = { temperature: 0, seed: 0 };

const APIS: Record<ApiName, Api> = {
  chat: {
    label: "/api/chat",
    route: "/api/chat",
    usage: "`prompt_eval_count` (the tokens read; Ollama's API has no total)",
    body: (t, turn, replies) => ({
      model: "bench",
      stream: true,
      options: { num_predict: REPLY_TOKENS, ...sampling },
      tools: t.tools.map((tool) => ({ type: "function", function: tool })),
      messages: [
        { role: "system", content: t.system },
        { role: "user", content: t.task },
        ...history(t, turn, replies, (reply, call, result, reminder) => [
          { role: "assistant", content: reply, tool_calls: [{ function: { name: call.name, arguments: call.arguments } }] },
          { role: "tool", content: result, tool_name: call.name },
          { role: "user", content: reminder },
        ]),
      ],
    }),
    read(event, into) {
      if (field(event, "error") !== undefined) into.error = JSON.stringify(field(event, "error"));
      if (field(event, "done") === true) into.readTokens = countAt(event, "prompt_eval_count");
      const text = textAt(event, "message", "content");
      into.text += text;
      return text !== "";
    },
  },
  completions: {
    label: "/v1/chat/completions",
    route: "/v1/chat/completions",
    usage: "`prompt_tokens`, of which `prompt_tokens_details.cached_tokens` reused",
    body: (t, turn, replies) => ({
      model: "bench",
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: REPLY_TOKENS,
      ...sampling,
      tools: t.tools.map((tool) => ({ type: "function", function: tool })),
      messages: [
        { role: "system", content: t.system },
        { role: "user", content: t.task },
        ...history(t, turn, replies, (reply, call, result, reminder) => [
          { role: "assistant", content: reply, tool_calls: [{ id: call.id, type: "function", function: { name: call.name, arguments: JSON.stringify(call.arguments) } }] },
          { role: "tool", tool_call_id: call.id, content: result },
          { role: "user", content: reminder },
        ]),
      ],
    }),
    read(event, into) {
      if (field(event, "error") !== undefined) into.error = JSON.stringify(field(event, "error"));
      usageInto(into, countAt(event, "usage", "prompt_tokens"), countAt(event, "usage", "prompt_tokens_details", "cached_tokens"));
      const text = textAt(event, "choices", 0, "delta", "content");
      into.text += text;
      return text !== "";
    },
  },
  messages: {
    label: "/v1/messages",
    route: "/v1/messages?beta=true",
    headers: { "anthropic-version": "2023-06-01", "anthropic-beta": "interleaved-thinking-2025-05-14" },
    usage: "`input_tokens` read + `cache_read_input_tokens` reused",
    promptNote: "the billing-header line, and replies that differ from that",
    body: (t, turn, replies) => ({
      model: "bench",
      stream: true,
      max_tokens: REPLY_TOKENS,
      temperature: 0,
      // Claude Code's first system block: a hash that changes with every request (the server blanks it).
      system: [
        { type: "text", text: `x-anthropic-billing-header: cc_version=2.1.101.e51; cc_entrypoint=cli; cch=${createHash("sha256").update(`turn ${turn}`).digest("hex").slice(0, 5)};` },
        { type: "text", text: t.system, cache_control: { type: "ephemeral" } },
      ],
      tools: t.tools.map((tool) => ({ name: tool.name, description: tool.description, input_schema: tool.parameters })),
      messages: [
        { role: "user", content: [{ type: "text", text: t.task }] },
        ...history(t, turn, replies, (reply, call, result, reminder) => [
          { role: "assistant", content: [...(reply !== "" ? [{ type: "text", text: reply }] : []), { type: "tool_use", id: call.id, name: call.name, input: call.arguments }] },
          { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: result }, { type: "text", text: reminder }] },
        ]),
      ],
    }),
    read(event, into) {
      const type = field(event, "type");
      if (type === "error") into.error = JSON.stringify(field(event, "error"));
      const usage = type === "message_start" ? field(event, "message", "usage") : type === "message_delta" ? field(event, "usage") : undefined;
      const read = countAt(usage, "input_tokens");
      if (read !== undefined) {
        const cached = countAt(usage, "cache_read_input_tokens") ?? 0;
        usageInto(into, read + cached, cached);
      }
      const text = type === "content_block_delta" && field(event, "delta", "type") === "text_delta" ? textAt(event, "delta", "text") : "";
      into.text += text;
      return text !== "";
    },
  },
  responses: {
    label: "/v1/responses",
    route: "/v1/responses",
    usage: "`input_tokens`, of which `input_tokens_details.cached_tokens` reused",
    body: (t, turn, replies) => responsesBody(t, { store: false, input: [userItem(t.task), ...history(t, turn, replies, responsesStep)] }),
    read: readResponses,
  },
  "responses-previous": {
    label: "/v1/responses (previous_response_id)",
    route: "/v1/responses",
    usage: "as /v1/responses",
    body: (t, turn, replies, previousId) => {
      if (turn === 0) return responsesBody(t, { store: true, input: [userItem(t.task)] });
      const step = t.steps[turn - 1]!;
      // The previous response holds the conversation up to its reply; this turn adds the step after it.
      const [, ...rest] = responsesStep(replies[turn - 1] ?? "", step.call, step.result, step.reminder);
      return responsesBody(t, { store: true, previous_response_id: previousId, input: rest });
    },
    read: readResponses,
  },
};

function usageInto(into: Reading, prompt: number | undefined, cached: number | undefined): void {
  if (typeof prompt !== "number") return;
  into.promptTokens = prompt;
  into.readTokens = prompt - (cached ?? 0);
}

function responsesBody(t: AgentTranscript, rest: Record<string, unknown>): Record<string, unknown> {
  return {
    model: "bench",
    stream: true,
    instructions: t.system,
    max_output_tokens: REPLY_TOKENS,
    temperature: 0,
    tools: t.tools.map((tool) => ({ type: "function", name: tool.name, description: tool.description, parameters: tool.parameters, strict: false })),
    tool_choice: "auto",
    ...rest,
  };
}

function userItem(text: string): unknown {
  return { type: "message", role: "user", content: [{ type: "input_text", text }] };
}

/** One step as Responses items: the reply, the call, its output, the reminder. */
function responsesStep(reply: string, call: AgentCall, result: string, reminder: string): unknown[] {
  return [
    { type: "message", role: "assistant", content: [{ type: "output_text", text: reply, annotations: [] }] },
    { type: "function_call", call_id: call.id, name: call.name, arguments: JSON.stringify(call.arguments) },
    { type: "function_call_output", call_id: call.id, output: result },
    userItem(reminder),
  ];
}

function readResponses(event: unknown, into: Reading): boolean {
  const type = field(event, "type");
  if (type === "response.created") into.responseId = textAt(event, "response", "id");
  if (type === "response.failed") into.error = JSON.stringify(field(event, "response", "error"));
  if (type === "error") into.error = JSON.stringify(event);
  if (type === "response.completed" || type === "response.incomplete") usageInto(into, countAt(event, "response", "usage", "input_tokens"), countAt(event, "response", "usage", "input_tokens_details", "cached_tokens"));
  const text = type === "response.output_text.delta" ? textAt(event, "delta") : "";
  into.text += text;
  return text !== "";
}

// ------------------------------------------------------------------ HTTP

/** POSTs one turn and reads its stream to the end; the time to first token is that of the first reply text. */
function streamTurn(served: SpawnedApp, api: Api, body: unknown): Promise<{ turn: TurnResult; responseId?: string }> {
  return new Promise((resolve, reject) => {
    const reading: Reading = { text: "" };
    const start = performance.now();
    let first: number | undefined;
    const headers = { "content-type": "application/json", ...api.headers };
    const request = http.request({ host: "127.0.0.1", port: served.port, path: api.route, method: "POST", agent: false, headers }, (response) => {
      let buffered = "";
      response.setEncoding("utf8");
      const take = (line: string, now: number): void => {
        const json = line.startsWith("data: ") ? line.slice(6) : line.startsWith("{") ? line : undefined;
        if (json === undefined || json === "[DONE]") return;
        if (api.read(JSON.parse(json), reading)) first ??= now;
      };
      response.on("data", (chunk: string) => {
        const now = performance.now();
        buffered += chunk;
        if (response.statusCode !== 200) return;
        let newline: number;
        while ((newline = buffered.indexOf("\n")) !== -1) {
          take(buffered.slice(0, newline).trim(), now);
          buffered = buffered.slice(newline + 1);
        }
      });
      response.on("end", () => {
        if (response.statusCode !== 200) return reject(new Error(`${api.route}: HTTP ${response.statusCode}: ${buffered.slice(0, 500)}`));
        take(buffered.trim(), performance.now());
        if (reading.error !== undefined) return reject(new Error(`${api.route}: ${reading.error}`));
        if (first === undefined) return reject(new Error(`${api.route}: the reply had no text`));
        resolve({
          turn: { ttftMs: first - start, reply: reading.text, ...(reading.promptTokens !== undefined && { promptTokens: reading.promptTokens }), ...(reading.readTokens !== undefined && { readTokens: reading.readTokens }) },
          ...(reading.responseId !== undefined && { responseId: reading.responseId }),
        });
      });
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(JSON.stringify(body));
  });
}

function requestJson(port: number, method: string, route: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
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

// ------------------------------------------------------------------ the model

/**
 * A copy of the GGUF at `source` whose chat template is Qwen 2.5's (the generated models carry plain ChatML, which
 * renders neither tools nor tool calls, so an agent's prompt would lose them) and whose trained context is
 * `contextSize` (the server caps a model's context at it): the header rebuilt with those two values, the tensor
 * data copied as is. Cached beside the source, under a name that changes with the template and the context.
 */
async function agentModel(source: string, contextSize: number): Promise<string> {
  const tag = createHash("sha256").update(`${QWEN25_TEMPLATE}\n${contextSize}`).digest("hex").slice(0, 10);
  const target = path.join(path.dirname(source), `${path.basename(source, ".gguf")}-agent-${tag}.gguf`);
  if (await stat(target).then((s) => s.isFile(), () => false)) return target;
  const parsed = await readGguf(source);
  const header = Buffer.alloc(Number(parsed.dataOffset));
  const handle = await open(source, "r");
  try {
    await handle.read(header, 0, header.length, 0);
  } finally {
    await handle.close();
  }
  const architecture = String(parsed.metadata.get("general.architecture"));
  const rebuilt = rewriteHeader(header, {
    "tokenizer.chat_template": (type) => encodeValue(type ?? STRING, QWEN25_TEMPLATE),
    [`${architecture}.context_length`]: (type) => encodeValue(type ?? U32, contextSize),
  });
  const temporary = `${target}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, rebuilt);
    await pipeline(createReadStream(source, { start: Number(parsed.dataOffset) }), createWriteStream(temporary, { flags: "a" }));
    const check = await readGguf(temporary);
    if (check.metadata.get("tokenizer.chat_template") !== QWEN25_TEMPLATE || check.tensors.length !== parsed.tensors.length) throw new Error(`the rewritten ${target} does not read back`);
    await rename(temporary, target);
  } finally {
    await rm(temporary, { force: true });
  }
  return target;
}

const U32 = 4;
const STRING = 8;
const ARRAY = 9;
const FIXED_SIZES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/**
 * `header` (a GGUF's bytes up to its tensor data) with the values of the keys in `replace` re-encoded (a key that is
 * absent is added), the tensor infos kept (their offsets count from the data section), padded to the alignment.
 */
function rewriteHeader(header: Buffer, replace: Record<string, (type: number | undefined) => Buffer>): Buffer {
  let at = 0;
  const u32 = (): number => ((at += 4), header.readUInt32LE(at - 4));
  const u64 = (): number => ((at += 8), Number(header.readBigUInt64LE(at - 8)));
  const skipString = (): void => {
    const length = u64();
    at += length;
  };
  const skipValue = (type: number): void => {
    if (type === STRING) return skipString();
    if (type === ARRAY) {
      const itemType = u32();
      const count = u64();
      if (itemType === STRING) for (let i = 0; i < count; i++) skipString();
      else at += count * (FIXED_SIZES[itemType] ?? NaN);
      return;
    }
    at += FIXED_SIZES[type] ?? NaN;
  };
  at = 8; // magic, version
  const tensorCount = u64();
  const kvCount = u64();
  const kvs: Buffer[] = [];
  const pending = new Map(Object.entries(replace));
  let alignment = 32;
  for (let i = 0; i < kvCount; i++) {
    const start = at;
    const keyLength = u64();
    const key = header.toString("utf8", at, at + keyLength);
    at += keyLength;
    const type = u32();
    if (key === "general.alignment" && type === U32) alignment = header.readUInt32LE(at);
    skipValue(type);
    if (Number.isNaN(at)) throw new Error(`GGUF key ${key}: unknown value type ${type}`);
    const encode = pending.get(key);
    pending.delete(key);
    kvs.push(encode ? Buffer.concat([encodeKey(key), encode(type)]) : header.subarray(start, at));
  }
  for (const [key, encode] of pending) kvs.push(Buffer.concat([encodeKey(key), encode(undefined)]));
  const infosStart = at;
  for (let i = 0; i < tensorCount; i++) {
    skipString();
    const dims = u32();
    at += 8 * dims + 4 + 8; // dims, type, offset
  }
  const counts = Buffer.alloc(24);
  header.copy(counts, 0, 0, 8);
  counts.writeBigUInt64LE(BigInt(tensorCount), 8);
  counts.writeBigUInt64LE(BigInt(kvs.length), 16);
  const body = Buffer.concat([counts, ...kvs, header.subarray(infosStart, at)]);
  return Buffer.concat([body, Buffer.alloc((alignment - (body.length % alignment)) % alignment)]);
}

function encodeKey(key: string): Buffer {
  const bytes = Buffer.from(key, "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(bytes.length));
  return Buffer.concat([length, bytes]);
}

/** A value of GGUF type `type` (a string, or an unsigned 32- or 64-bit integer), with its type tag. */
function encodeValue(type: number, value: string | number): Buffer {
  const tag = Buffer.alloc(4);
  tag.writeUInt32LE(type);
  if (type === STRING && typeof value === "string") return Buffer.concat([tag, encodeKey(value)]);
  const n = Buffer.alloc(type === U32 ? 4 : 8);
  if (type === U32 && typeof value === "number") n.writeUInt32LE(value);
  else if (type === 10 && typeof value === "number") n.writeBigUInt64LE(BigInt(value));
  else throw new Error(`cannot write ${JSON.stringify(value)} as GGUF type ${type}`);
  return Buffer.concat([tag, n]);
}

// ------------------------------------------------------------------ the report

function render(
  sessions: SessionResult[],
  transcript: AgentTranscript,
  info: { options: AgentBenchOptions; engineSetting: string; modelName: string; loadAverage: [number, number] },
): string {
  const { options } = info;
  const turns = options.turns;
  // The prompt's length per turn: from the first API whose usage gives it with the same prompt as /v1/chat/completions.
  const reference = sessions.find((s) => s.api === APIS.completions) ?? sessions.find((s) => s.turns.some((t) => t.promptTokens !== undefined));
  const promptAt = (turn: number): number | undefined => reference?.turns[turn]?.promptTokens;
  const grewAt = (turn: number): number | undefined => {
    const now = promptAt(turn);
    const before = turn === 0 ? 0 : promptAt(turn - 1);
    return now !== undefined && before !== undefined ? now - before : undefined;
  };
  /** An API's prompt length at a turn: its own usage's, else the reference's when its first (cold) turn read as many. */
  const sameAsReference = (s: SessionResult): boolean => s === reference || (s.turns[0]?.promptTokens === undefined && s.turns[0]?.readTokens === promptAt(0));
  const promptOf = (s: SessionResult, turn: number): number | undefined => s.turns[turn]?.promptTokens ?? (sameAsReference(s) ? promptAt(turn) : undefined);

  const header = `| turn | prompt tokens | new | ${sessions.map((s) => `${s.api.label} TTFT ms | read`).join(" | ")} |`;
  const rule = `|--:|--:|--:|${sessions.map(() => "--:|--:|").join("")}`;
  const rows = Array.from({ length: turns }, (_, turn) => {
    const cells = sessions.map((s) => {
      const t = s.turns[turn];
      return t ? `${t.ttftMs.toFixed(0)} | ${t.readTokens ?? "–"}` : "– | –";
    });
    return `| ${turn + 1} | ${promptAt(turn) ?? "–"} | ${grewAt(turn) ?? "–"} | ${cells.join(" | ")} |`;
  });

  const later = (s: SessionResult): TurnResult[] => s.turns.slice(1);
  const mean = (values: number[]): number => (values.length > 0 ? values.reduce((a, b) => a + b, 0) / values.length : NaN);
  const chat = sessions.find((s) => s.api === APIS.chat);
  const chatMean = chat ? mean(later(chat).map((t) => t.ttftMs)) : NaN;
  const summary = sessions.map((s) => {
    const ttft = mean(later(s).map((t) => t.ttftMs));
    const ratio = Number.isFinite(chatMean) && chatMean > 0 && Number.isFinite(ttft) ? `${(ttft / chatMean).toFixed(2)}× /api/chat's` : "no /api/chat to compare";
    let prompt = 0;
    let read = 0;
    let known = true;
    s.turns.forEach((t, turn) => {
      if (turn === 0) return;
      const total = promptOf(s, turn);
      if (total === undefined || t.readTokens === undefined) known = false;
      else {
        prompt += total;
        read += t.readTokens;
      }
    });
    const reuse = known && prompt > 0 ? `reused ${(((prompt - read) / prompt) * 100).toFixed(1)}% of the prompt tokens of turns 2–${s.turns.length} (read ${read} of ${prompt})` : "reuse unknown (no prompt length to compare with)";
    const difference = s === reference ? "" : promptDifference(s, promptAt);
    // Greedy decoding: the same prompt gives the same reply, so equal replies say the prompts rendered alike.
    const same = chat && s !== chat ? s.turns.filter((t, turn) => t.reply === chat.turns[turn]?.reply).length : undefined;
    const replies = same !== undefined ? `; replies equal to /api/chat's on ${same} of ${s.turns.length} turns` : "";
    const stopped = s.error ? `; STOPPED after ${s.turns.length} turns: ${s.error}` : "";
    return `- ${s.api.label} (engine ${s.engine}): mean TTFT of turns 2–${s.turns.length} ${Number.isFinite(ttft) ? ttft.toFixed(0) : "–"} ms, ${ratio}; ${reuse}${difference}${replies}${stopped}`;
  });

  // What broke reuse: a turn that read more than its prompt grew by (the earlier prompt was not all reused); and
  // turns that read all the growth, the previous reply included (its cached tokens were not reused either).
  const breaks: string[] = [];
  const replyReread = sessions.map((s) => {
    let count = 0;
    let of = 0;
    s.turns.forEach((t, turn) => {
      const before = turn === 0 ? undefined : promptOf(s, turn - 1);
      const now = promptOf(s, turn);
      if (before === undefined || now === undefined || t.readTokens === undefined) return;
      of++;
      if (t.readTokens > now - before + SLACK_TOKENS) breaks.push(`${s.api.label} turn ${turn + 1}: read ${t.readTokens} of ${now} tokens where the prompt grew by ${now - before}`);
      else if (t.readTokens >= now - before) count++;
    });
    return { s, count, of };
  });
  const first = transcript.steps[0];
  return [
    "",
    "## Agent sessions: time to first token per turn, each API beside /api/chat",
    "",
    `- machine: ${os.cpus()[0]?.model ?? "unknown CPU"}, ${os.availableParallelism()} cores, ${process.platform} ${process.arch}, Node ${process.version}; ` +
      `load (1-min average) ${info.loadAverage[0].toFixed(2)} before, ${info.loadAverage[1].toFixed(2)} after`,
    `- server: a fresh process per API (each starts cold), AI_SERVER_ENGINE=${info.engineSetting}, ${options.config.threads} thread(s), 1 slot of ${options.contextSize} tokens; ` +
      `model ${info.modelName} with Qwen 2.5's chat template (tools in the system turn, calls and results as <tool_call> / <tool_response> blocks)`,
    `- transcript (bench/agent-transcript.ts): a system prompt with ${transcript.tools.length} tools and the task, then each turn the model's reply ` +
      `(${REPLY_TOKENS} tokens at temperature 0, given back verbatim), a tool call (${transcript.steps.map((x) => x.call.name).filter((n, i, all) => all.indexOf(n) === i).join(", ")}), ` +
      `its result (e.g. ${first ? first.result.length : 0} characters for the first) and a system reminder; streamed, ${turns} turns`,
    "- TTFT: request sent → first reply text at the client. read: prompt tokens the server read anew (not reused from its cache), from each API's usage: " +
      sessions.map((s) => `${s.api.label} ${s.api.usage}`).join("; "),
    `- prompt tokens: ${reference ? `${reference.api.label}'s prompt length` : "–"}; new: how much it grew since the turn before (the earlier reply re-tokenized, the call, its result, the reminder): ` +
      "with the cache intact a turn reads at most that",
    "",
    header,
    rule,
    ...rows,
    "",
    ...summary,
    ...growthNote(chat ?? sessions[0]),
    "",
    "What breaks reuse:",
    breaks.length === 0
      ? `- measured here: nothing before the last reply; no turn of any API read more than its prompt grew by (+${SLACK_TOKENS} tokens), ` +
        "so every turn reused the whole earlier prompt, the Anthropic session's too although its billing-header hash changed every turn (it is blanked before the template)."
      : `- measured here: ${breaks.join("; ")}`,
    `- the model's own reply: re-read in full on ${replyReread.map((r) => `${r.count} of ${r.of} turns through ${r.s.api.label}`).join(", ")} (read ≥ new)` +
      (replyReread.some((r) => r.count > 0)
        ? ". Seen here with llama.cpp's slot debugging (LLAMA_SERVER_SLOTS_DEBUG=1): the reply's first token is a SentencePiece piece with a leading space " +
          "(this vocabulary's), the reply text as llama.cpp's chat endpoint returns it has lost that space, so the reply sent back tokenizes differently from " +
          `its first token on and the ~${REPLY_TOKENS} tokens cached while generating are read again. BPE models (Qwen, Llama 3, gpt-oss) usually begin a reply without a space.`
        : "."),
    "- not exercised by this model: a template that renders earlier turns differently once the conversation moves on (Qwen3's drops the reasoning of " +
      "turns before the last user message, so the turn after a thinking reply re-reads from there), and clients that re-send a call's arguments with " +
      "their keys in another order than the model wrote them (the template renders them in the order received).",
  ].join("\n");
}

/** Why TTFT still grows when every turn reads about as much: the turn-2 and last-turn figures of one session. */
function growthNote(s: SessionResult | undefined): string[] {
  const second = s?.turns[1];
  const last = s?.turns.at(-1);
  if (!s || !second || !last || last === second || second.readTokens === undefined || last.readTokens === undefined) return [];
  return [
    `- TTFT grows with the context although each turn reads about as much: through ${s.api.label}, turn 2 read ${second.readTokens} tokens in ${second.ttftMs.toFixed(0)} ms, ` +
      `turn ${s.turns.length} read ${last.readTokens} in ${last.ttftMs.toFixed(0)} ms; every new token attends to the whole cached prefix.`,
  ];
}

/** How an API's prompt compares with the reference's (the same conversation through another wire). */
function promptDifference(s: SessionResult, promptAt: (turn: number) => number | undefined): string {
  const differences = s.turns.flatMap((t, turn) => {
    const reference = promptAt(turn);
    return t.promptTokens !== undefined && reference !== undefined ? [t.promptTokens - reference] : [];
  });
  if (differences.length === 0) return s.turns[0]?.readTokens === promptAt(0) ? "; same prompt length on turn 1" : "; prompt length unknown";
  const distinct = [...new Set(differences)];
  if (distinct.length === 1 && distinct[0] === 0) return "; the same prompt length on every turn";
  const signed = (n: number): string => `${n > 0 ? "+" : ""}${n}`;
  const range = distinct.length === 1 ? signed(distinct[0]!) : `${signed(Math.min(...differences))} to ${signed(Math.max(...differences))}`;
  return `; prompt ${range} tokens against the reference${s.api.promptNote ? ` (${s.api.promptNote})` : ""}`;
}

function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value && Number.isInteger(n) && n > 0 ? n : fallback;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(await agentSessionBench(agentBenchOptions(process.env, (message) => void process.stderr.write(`${message}\n`))));
}
