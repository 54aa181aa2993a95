import type { ChatRequest, CompletionRequest, LogprobsRequest, Message, OutputFormat, ThinkingRequest, ToolCall, ToolDefinition } from "../../domain/chat.js";
import type { TokenCandidate, TokenLogprob } from "../../domain/generation.js";
import { CapabilityError, InternalError, InvalidRequestError } from "../../domain/errors.js";
import type { Outcome } from "../../inference/run-model.js";
import { dropUndefined, toSampling } from "../../inference/model-options.js";
import type { Capability, ModelRecord } from "../../domain/model.js";
import { canRenderPromptTemplate } from "../../engine/prompt-template.js";
import { type ChatBody, type GenerateBody, type WireMessage, type WireOptions, type WireTool, type WireToolCall } from "./schemas.js";
import { parseToolArguments } from "../tool-arguments.js";

/** Pure translations between Ollama's wire format and the domain, in both directions. */

// ---------------------------------------------------------------- wire → domain

/**
 * `think`: absent leaves the model's default; false turns thinking off; true is Ollama's default effort, "medium";
 * a level asks for that effort.
 */
export function toThinking(think: GenerateBody["think"]): ThinkingRequest | undefined {
  if (think === undefined) return undefined;
  if (think === false) return { enabled: false };
  return { enabled: true, effort: think === true ? "medium" : think };
}

/** `logprobs: true` asks for them, with `top_logprobs` alternatives per token (0 unless given); else none. */
export function toLogprobs(body: { logprobs?: boolean | undefined; top_logprobs?: number | undefined }): LogprobsRequest | undefined {
  return body.logprobs === true ? { top: body.top_logprobs ?? 0 } : undefined;
}

export function toOutputFormat(format: string | Record<string, unknown> | undefined): OutputFormat {
  if (format === undefined || format === "") return { type: "text" };
  if (format === "json") return { type: "json" };
  if (typeof format === "string") throw new InvalidRequestError(`format: invalid format ${JSON.stringify(format)}: expected "json" or a JSON schema`);
  return { type: "json_schema", schema: format };
}

export function toToolDefinitions(tools: WireTool[] | undefined): ToolDefinition[] | undefined {
  if (!tools || tools.length === 0) return undefined;
  return tools.map(({ function: f }) => dropUndefined({ name: f.name, description: f.description, parameters: f.parameters }));
}

/** Domain messages; the model's SYSTEM prompt is prepended when the conversation has no system message. */
export function toMessages(messages: WireMessage[], defaultSystem?: string): Message[] {
  const mapped = messages.map((m, i) => toMessage(m, i));
  if (defaultSystem && !mapped.some((m) => m.role === "system")) mapped.unshift({ role: "system", content: defaultSystem });
  return mapped;
}

function toMessage(m: WireMessage, index: number): Message {
  const content = m.content ?? "";
  switch (m.role) {
    case "system":
      return { role: "system", content };
    case "user":
      return { role: "user", content, ...(m.images?.length && { images: m.images }) };
    case "assistant":
      return dropUndefined({
        role: "assistant" as const,
        content,
        thinking: m.thinking,
        toolCalls: m.tool_calls?.length ? m.tool_calls.map((c, j) => toToolCall(c, `messages[${index}].tool_calls[${j}]`)) : undefined,
      });
    case "tool":
      return dropUndefined({ role: "tool" as const, content, toolName: m.tool_name, toolCallId: m.tool_call_id });
    default:
      return m.role satisfies never;
  }
}

function toToolCall(call: WireToolCall, field: string): ToolCall {
  const args = parseToolArguments(call.function.arguments, `${field}.function.arguments`);
  return { ...(call.id !== undefined && { id: call.id }), name: call.function.name, arguments: args };
}

export function toCompletionRequest(body: GenerateBody, record: ModelRecord, options: WireOptions): CompletionRequest {
  const raw = body.raw ?? false;
  if (raw && (body.template !== undefined || body.system !== undefined || body.context !== undefined)) {
    throw new InvalidRequestError("raw mode does not support template, system, or context");
  }
  const system = raw ? undefined : (body.system ?? record.system);
  // A stored template this server cannot render whole (an Ollama library model's Go template) gives way to the
  // model's own chat template.
  const stored = record.template !== undefined && canRenderPromptTemplate(record.template) ? record.template : undefined;
  const template = raw ? undefined : (body.template ?? stored);
  return dropUndefined({
    prompt: body.prompt ?? "",
    suffix: body.suffix || undefined,
    raw,
    system,
    template,
    context: body.context?.length ? body.context : undefined,
    format: toOutputFormat(body.format),
    sampling: toSampling(options),
    thinking: raw ? undefined : toThinking(body.think),
    logprobs: toLogprobs(body),
  });
}

export function toChatRequest(body: ChatBody, record: ModelRecord, options: WireOptions): ChatRequest {
  return dropUndefined({
    messages: toMessages(body.messages ?? [], record.system),
    tools: toToolDefinitions(body.tools),
    format: toOutputFormat(body.format),
    sampling: toSampling(options),
    thinking: toThinking(body.think),
    logprobs: toLogprobs(body),
    truncate: body.truncate,
    shift: body.shift,
  });
}

/** A capability a request needs, and how Ollama names it in the error (`"m" does not support <label>`). */
export interface Need {
  capability: Capability;
  label: string;
}

/** What a generate request needs from the model. */
export function generateNeeds(body: GenerateBody): Need[] {
  return [
    { capability: "completion", label: "generate" },
    ...(body.suffix ? [{ capability: "insert" as const, label: "insert" }] : []),
    ...(body.images?.length ? [{ capability: "vision" as const, label: "vision" }] : []),
    ...(wantsThinking(body.think) ? [{ capability: "thinking" as const, label: "thinking" }] : []),
  ];
}

/** What a chat request needs from the model. */
export function chatNeeds(body: ChatBody): Need[] {
  return [
    { capability: "completion", label: "chat" },
    ...(body.tools?.length ? [{ capability: "tools" as const, label: "tools" }] : []),
    ...(body.messages?.some((m) => m.images?.length) ? [{ capability: "vision" as const, label: "vision" }] : []),
    ...(wantsThinking(body.think) ? [{ capability: "thinking" as const, label: "thinking" }] : []),
  ];
}

/** Throws CapabilityError for the first need the model does not meet. `model` is the name as the client sent it. */
export function checkCapabilities(model: string, has: readonly Capability[], needs: readonly Need[]): void {
  const missing = needs.find((need) => !has.includes(need.capability));
  if (missing) throw new CapabilityError(model, missing.label);
}

/** true or an effort level needs a thinking model; false (thinking off) is fine on any model. */
function wantsThinking(think: GenerateBody["think"]): boolean {
  return think !== undefined && think !== false;
}

// ---------------------------------------------------------------- domain → wire

export interface WireMetrics {
  total_duration: number;
  load_duration: number;
  prompt_eval_count: number;
  prompt_eval_duration: number;
  eval_count: number;
  eval_duration: number;
}

/** One alternative token at a step, as Ollama writes it. */
export interface WireTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

/** A generated token's log-probability, with the most likely alternatives when `top_logprobs` asked for them. */
export interface WireLogprob extends WireTokenLogprob {
  top_logprobs?: WireTokenLogprob[];
}

export interface GenerateChunk extends Partial<WireMetrics> {
  model: string;
  created_at: string;
  response: string;
  /** Reasoning of a thinking model, as deltas (Ollama sends it beside an empty `response`). */
  thinking?: string;
  done: boolean;
  done_reason?: string;
  context?: number[];
  logprobs?: WireLogprob[];
}

export interface WireToolCallOut {
  id?: string;
  function: { index: number; name: string; arguments: Record<string, unknown> };
}

export interface ChatChunk extends Partial<WireMetrics> {
  model: string;
  created_at: string;
  message: { role: "assistant"; content: string; thinking?: string; tool_calls?: WireToolCallOut[] };
  done: boolean;
  done_reason?: string;
  logprobs?: WireLogprob[];
}

/** RFC 3339 with fractional seconds, e.g. "2025-01-02T03:04:05.678Z". */
export function rfc3339(date: Date): string {
  return date.toISOString();
}

export function metrics(outcome: Outcome): WireMetrics | Record<string, never> {
  if (!outcome.usage) return {};
  return {
    total_duration: outcome.totalDurationNs,
    load_duration: outcome.loadDurationNs,
    // Ollama counts the prompt tokens it read, not those reused from the cache
    prompt_eval_count: outcome.usage.promptTokens - (outcome.usage.cachedTokens ?? 0),
    prompt_eval_duration: outcome.usage.promptDurationNs,
    eval_count: outcome.usage.completionTokens,
    eval_duration: outcome.usage.evalDurationNs,
  };
}

/** A piece of the answer, with its tokens' log-probabilities when they were asked for. */
export function generateTextChunk(model: string, text: string, at: Date, logprobs?: readonly TokenLogprob[]): GenerateChunk {
  return { model, created_at: rfc3339(at), response: text, done: false, ...(logprobs?.length && { logprobs: toWireLogprobs(logprobs) }) };
}

/** A piece of a thinking model's reasoning. */
export function generateThinkingChunk(model: string, thinking: string, at: Date): GenerateChunk {
  return { model, created_at: rfc3339(at), response: "", thinking, done: false };
}

/** The last generate chunk; `context` is only reported for templated (non-raw) completions. */
export function generateDoneChunk(model: string, outcome: Outcome, withContext: boolean, at: Date): GenerateChunk {
  const chunk: GenerateChunk = { model, created_at: rfc3339(at), response: "", done: true, done_reason: outcome.reason };
  if (withContext && outcome.usage) chunk.context = outcome.context ?? [];
  return { ...chunk, ...metrics(outcome) };
}

/** A piece of the answer, with its tokens' log-probabilities when they were asked for. */
export function chatTextChunk(model: string, text: string, at: Date, logprobs?: readonly TokenLogprob[]): ChatChunk {
  return {
    model,
    created_at: rfc3339(at),
    message: { role: "assistant", content: text },
    done: false,
    ...(logprobs?.length && { logprobs: toWireLogprobs(logprobs) }),
  };
}

/** A piece of a thinking model's reasoning, in `message.thinking`. */
export function chatThinkingChunk(model: string, thinking: string, at: Date): ChatChunk {
  return { model, created_at: rfc3339(at), message: { role: "assistant", content: "", thinking }, done: false };
}

/** Ollama's `logprobs` entries; `top_logprobs` only where alternatives were asked for. */
export function toWireLogprobs(logprobs: readonly TokenLogprob[]): WireLogprob[] {
  return logprobs.map((entry) => ({
    ...toWireCandidate(entry),
    ...(entry.top.length > 0 && { top_logprobs: entry.top.map(toWireCandidate) }),
  }));
}

function toWireCandidate({ token, logprob, bytes }: TokenCandidate): WireTokenLogprob {
  return { token, logprob, bytes: [...bytes] };
}

/** A tool call is sent whole, in a chunk of its own; `index` counts the calls of this response from 0. */
export function chatToolCallChunk(model: string, call: ToolCall, index: number, at: Date): ChatChunk {
  return {
    model,
    created_at: rfc3339(at),
    message: { role: "assistant", content: "", tool_calls: [toWireToolCall(call, index)] },
    done: false,
  };
}

export function chatDoneChunk(model: string, outcome: Outcome, at: Date): ChatChunk {
  return {
    model,
    created_at: rfc3339(at),
    message: { role: "assistant", content: "" },
    done: true,
    done_reason: outcome.reason,
    ...metrics(outcome),
  };
}

export function toWireToolCall(call: ToolCall, index: number): WireToolCallOut {
  return { ...(call.id !== undefined && { id: call.id }), function: { index, name: call.name, arguments: call.arguments } };
}

/** The `stream:false` answer: the final chunk carrying the whole response text, reasoning and log-probabilities. */
export function collectGenerate(chunks: readonly GenerateChunk[]): GenerateChunk {
  const last = lastOf(chunks);
  const thinking = chunks.map((c) => c.thinking ?? "").join("");
  const logprobs = chunks.flatMap((c) => c.logprobs ?? []);
  return {
    ...last,
    response: chunks.map((c) => c.response).join(""),
    ...(thinking !== "" && { thinking }),
    ...(logprobs.length > 0 && { logprobs }),
  };
}

/** The `stream:false` answer: the final chunk carrying the whole content, reasoning, every tool call and log-probability. */
export function collectChat(chunks: readonly ChatChunk[]): ChatChunk {
  const last = lastOf(chunks);
  const toolCalls = chunks.flatMap((c) => c.message.tool_calls ?? []);
  const content = chunks.map((c) => c.message.content).join("");
  const thinking = chunks.map((c) => c.message.thinking ?? "").join("");
  const logprobs = chunks.flatMap((c) => c.logprobs ?? []);
  return {
    ...last,
    message: { role: "assistant", content, ...(thinking !== "" && { thinking }), ...(toolCalls.length > 0 && { tool_calls: toolCalls }) },
    ...(logprobs.length > 0 && { logprobs }),
  };
}

function lastOf<T>(items: readonly T[]): T {
  const last = items[items.length - 1];
  if (last === undefined) throw new InternalError("the engine ended a stream without a done event");
  return last;
}

