import type { ToolCall } from "../../domain/chat.js";
import { GenerationError } from "../../domain/errors.js";
import type { FinishReason, GenerationEvent, TokenLogprob, Usage } from "../../domain/generation.js";
import { toTokenLogprobs } from "../llama-server/logprobs.js";
import { EndpointFailure, requestError } from "./upstream-errors.js";

/** What the answer must be reduced to. */
export interface AnswerOptions {
  /** Candidates kept per token when log-probabilities were asked for (absent: none asked). */
  logprobsTop?: number;
  /** Parallel tool calls were switched off: keep the first call only. */
  singleToolCall?: boolean;
}

/** A JSON object of the endpoint's. */
type Json = Record<string, unknown>;

/**
 * One streamed answer of an upstream endpoint — OpenAI chat chunks (`delta`) or completion chunks (`text`) — turned
 * into GenerationEvents as each chunk arrives: answer text (with its log-probabilities), reasoning (`reasoning_content`
 * as llama.cpp and DeepSeek send it, or `reasoning` as vLLM and OpenRouter do), and each tool call whole as soon as it
 * is complete (the next call begins, or the answer ends). Reasoning loses its leading and trailing whitespace, as on
 * the local engines. The usage comes from the last chunk (`stream_options.include_usage`); the durations from
 * llama.cpp's `timings` when present, else as measured here (prompt: until the first output; eval: the rest).
 */
export class UpstreamAnswer {
  /** The answer's text so far (reasoning excluded), for the structured-output check. */
  text = "";
  /** Events handed out: once there is one, the request can no longer move to another endpoint. */
  emitted = 0;
  reason: FinishReason = "stop";
  private readonly calls = new Map<number, { id?: string; name: string; arguments: string }>();
  private sentCalls = 0;
  /** The highest tool-call index seen (-1: none yet). */
  private lastIndex = -1;
  private pendingLogprobs: TokenLogprob[] = [];
  private thinkingSpace = "";
  private thought = false;
  private pieces = 0;
  private firstOutputNs?: bigint;
  private upstreamUsage?: Json;
  private timings?: Json;

  constructor(
    private readonly options: AnswerOptions,
    private readonly startNs: bigint,
  ) {}

  /**
   * The events one chunk brings, in order. An `error` chunk throws: the request's own error for a 4xx code, else an
   * EndpointFailure (the endpoint failed; another may answer if nothing was handed out yet).
   */
  take(chunk: Json): GenerationEvent[] {
    if (chunk.error !== undefined) {
      const error = isRecord(chunk.error) ? chunk.error : { message: chunk.error };
      const status = typeof error.code === "number" ? error.code : error.type === "invalid_request_error" ? 400 : 500;
      const message = typeof error.message === "string" ? error.message : JSON.stringify(error);
      if (status >= 400 && status < 500) throw requestError(message);
      throw new EndpointFailure(`the endpoint's stream failed: ${message}`, "server_error");
    }
    if (isRecord(chunk.usage)) this.upstreamUsage = chunk.usage;
    if (isRecord(chunk.timings)) this.timings = chunk.timings;
    const events: GenerationEvent[] = [];
    const choice = Array.isArray(chunk.choices) ? chunk.choices.find((c): c is Json => isRecord(c) && (c.index ?? 0) === 0) : undefined;
    if (!choice) return events;
    const delta = isRecord(choice.delta) ? choice.delta : undefined;
    const logprobs = this.logprobsOf(choice.logprobs);
    const reasoning = delta?.reasoning_content ?? delta?.reasoning;
    if (typeof reasoning === "string" && reasoning !== "") this.thinking(reasoning, events);
    const text = delta ? delta.content : choice.text;
    if (typeof text === "string" && (text !== "" || logprobs.length > 0)) this.answerText(text, logprobs, events);
    else this.pendingLogprobs.push(...logprobs);
    if (delta && Array.isArray(delta.tool_calls)) for (const piece of delta.tool_calls) if (isRecord(piece)) this.toolCallPiece(piece, events);
    if (choice.finish_reason === "length") this.reason = "length";
    if (typeof choice.finish_reason === "string") this.completeCalls(Number.POSITIVE_INFINITY, events);
    return this.count(events);
  }

  /** What is left when the stream ends: tool calls not yet handed out. */
  finish(): GenerationEvent[] {
    const events: GenerationEvent[] = [];
    this.completeCalls(Number.POSITIVE_INFINITY, events);
    return this.count(events);
  }

  private count(events: GenerationEvent[]): GenerationEvent[] {
    if (events.length > 0) {
      this.firstOutputNs ??= process.hrtime.bigint();
      this.emitted += events.length;
    }
    return events;
  }

  private thinking(text: string, events: GenerationEvent[]): void {
    const joined = this.thought ? this.thinkingSpace + text : text.trimStart();
    const body = joined.trimEnd();
    this.thinkingSpace = joined.slice(body.length);
    if (body === "") return;
    this.thought = true;
    this.pieces++;
    events.push({ type: "thinking", text: body });
  }

  private answerText(text: string, logprobs: TokenLogprob[], events: GenerationEvent[]): void {
    this.thinkingSpace = "";
    this.text += text;
    this.pieces++;
    const attached = [...this.pendingLogprobs, ...logprobs];
    this.pendingLogprobs = [];
    events.push({ type: "text", text, ...(this.options.logprobsTop !== undefined && { logprobs: attached }) });
  }

  /** A piece of a streamed tool call; a piece of a later call means the earlier ones are complete. */
  private toolCallPiece(piece: Json, events: GenerationEvent[]): void {
    this.thinkingSpace = "";
    const current = this.calls.get(this.lastIndex);
    const fresh = typeof piece.id === "string" && piece.id !== "" && (current === undefined || (current.id !== undefined && current.id !== piece.id));
    const index = typeof piece.index === "number" ? piece.index : fresh ? this.lastIndex + 1 : Math.max(0, this.lastIndex);
    this.lastIndex = Math.max(this.lastIndex, index);
    this.completeCalls(index, events);
    const call = this.calls.get(index) ?? { name: "", arguments: "" };
    if (typeof piece.id === "string" && piece.id !== "") call.id = piece.id;
    const fn = isRecord(piece.function) ? piece.function : {};
    if (typeof fn.name === "string") call.name += fn.name;
    if (typeof fn.arguments === "string") call.arguments += fn.arguments;
    else if (isRecord(fn.arguments)) call.arguments += JSON.stringify(fn.arguments);
    this.calls.set(index, call);
  }

  /** Hands out every call whose index is below `before`, in order. */
  private completeCalls(before: number, events: GenerationEvent[]): void {
    for (const index of [...this.calls.keys()].sort((a, b) => a - b)) {
      if (index >= before) break;
      const call = this.calls.get(index);
      this.calls.delete(index);
      if (!call || (this.options.singleToolCall && this.sentCalls > 0)) continue;
      this.sentCalls++;
      this.pieces++;
      events.push({ type: "tool_call", call: parseCall(call) });
    }
  }

  private logprobsOf(value: unknown): TokenLogprob[] {
    const top = this.options.logprobsTop;
    if (top === undefined || !isRecord(value)) return [];
    if (Array.isArray(value.content)) return toTokenLogprobs(value.content, top);
    // The legacy completions shape: parallel arrays, candidates as {token: logprob} objects.
    const tokens = Array.isArray(value.tokens) ? value.tokens : [];
    const logprobs = Array.isArray(value.token_logprobs) ? value.token_logprobs : [];
    const tops = Array.isArray(value.top_logprobs) ? value.top_logprobs : [];
    return tokens.map((token, i) => {
      const text = String(token);
      const candidates = Object.entries(isRecord(tops[i]) ? tops[i] : {}).map(([t, lp]) => ({ token: t, logprob: Number(lp), bytes: [...Buffer.from(t, "utf8")] }));
      return { token: text, logprob: Number(logprobs[i] ?? 0), bytes: [...Buffer.from(text, "utf8")], top: candidates.slice(0, top) };
    });
  }

  /** The usage the endpoint reported (its own counts), timed as described above. */
  usage(): Usage {
    const u = this.upstreamUsage ?? {};
    const end = process.hrtime.bigint();
    const first = this.firstOutputNs ?? end;
    const t = this.timings ?? {};
    const cached = isRecord(u.prompt_tokens_details) ? u.prompt_tokens_details.cached_tokens : undefined;
    const reasoning = isRecord(u.completion_tokens_details) ? u.completion_tokens_details.reasoning_tokens : undefined;
    return {
      promptTokens: typeof u.prompt_tokens === "number" ? u.prompt_tokens : 0,
      ...(typeof cached === "number" && { cachedTokens: cached }),
      completionTokens: typeof u.completion_tokens === "number" ? u.completion_tokens : this.pieces,
      ...(typeof reasoning === "number" && reasoning > 0 && { reasoningTokens: reasoning }),
      promptDurationNs: typeof t.prompt_ms === "number" ? Math.round(t.prompt_ms * 1e6) : Number(first - this.startNs),
      evalDurationNs: typeof t.predicted_ms === "number" ? Math.round(t.predicted_ms * 1e6) : Number(end - first),
    };
  }
}

function parseCall(call: { id?: string; name: string; arguments: string }): ToolCall {
  let parsed: unknown;
  try {
    parsed = call.arguments.trim() === "" ? {} : JSON.parse(call.arguments);
  } catch {
    throw new GenerationError(`the upstream model called ${call.name} with arguments that are not JSON: ${call.arguments.slice(0, 200)}`);
  }
  if (!isRecord(parsed)) throw new GenerationError(`the upstream model called ${call.name} with arguments that are not a JSON object`);
  return { ...(call.id !== undefined && { id: call.id }), name: call.name, arguments: parsed };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
