import type { ChatRequest, CompletionRequest, Message, OutputFormat, ToolCall, ToolDefinition } from "../../domain/chat.js";
import { CapabilityError, InternalError, InvalidRequestError } from "../../domain/errors.js";
import type { Outcome } from "../../inference/run-model.js";
import { dropUndefined, toSampling } from "../../inference/model-options.js";
import type { Capability, ModelRecord } from "../../domain/model.js";
import { canRenderPromptTemplate } from "../../engine/prompt-template.js";
import { type ChatBody, type GenerateBody, type WireMessage, type WireOptions, type WireTool, type WireToolCall } from "./schemas.js";

/** Pure translations between Ollama's wire format and the domain, in both directions. */

// ---------------------------------------------------------------- wire → domain




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
  const args = call.function.arguments;
  let parsed: unknown = args ?? {};
  if (typeof args === "string") {
    try {
      parsed = args.trim() === "" ? {} : JSON.parse(args);
    } catch {
      throw new InvalidRequestError(`${field}.function.arguments: not valid JSON`);
    }
  }
  if (!isObject(parsed)) throw new InvalidRequestError(`${field}.function.arguments: expected an object`);
  return { ...(call.id !== undefined && { id: call.id }), name: call.function.name, arguments: parsed };
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
  });
}

export function toChatRequest(body: ChatBody, record: ModelRecord, options: WireOptions): ChatRequest {
  return dropUndefined({
    messages: toMessages(body.messages ?? [], record.system),
    tools: toToolDefinitions(body.tools),
    format: toOutputFormat(body.format),
    sampling: toSampling(options),
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

function wantsThinking(think: boolean | string | undefined): boolean {
  return think === true || (typeof think === "string" && think !== "" && think !== "false" && think !== "none");
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

export interface GenerateChunk extends Partial<WireMetrics> {
  model: string;
  created_at: string;
  response: string;
  done: boolean;
  done_reason?: string;
  context?: number[];
}

export interface WireToolCallOut {
  id?: string;
  function: { index: number; name: string; arguments: Record<string, unknown> };
}

export interface ChatChunk extends Partial<WireMetrics> {
  model: string;
  created_at: string;
  message: { role: "assistant"; content: string; tool_calls?: WireToolCallOut[] };
  done: boolean;
  done_reason?: string;
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

export function generateTextChunk(model: string, text: string, at: Date): GenerateChunk {
  return { model, created_at: rfc3339(at), response: text, done: false };
}

/** The last generate chunk; `context` is only reported for templated (non-raw) completions. */
export function generateDoneChunk(model: string, outcome: Outcome, withContext: boolean, at: Date): GenerateChunk {
  const chunk: GenerateChunk = { model, created_at: rfc3339(at), response: "", done: true, done_reason: outcome.reason };
  if (withContext && outcome.usage) chunk.context = outcome.context ?? [];
  return { ...chunk, ...metrics(outcome) };
}

export function chatTextChunk(model: string, text: string, at: Date): ChatChunk {
  return { model, created_at: rfc3339(at), message: { role: "assistant", content: text }, done: false };
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

/** The `stream:false` answer: the final chunk carrying the whole response text. */
export function collectGenerate(chunks: readonly GenerateChunk[]): GenerateChunk {
  const last = lastOf(chunks);
  return { ...last, response: chunks.map((c) => c.response).join("") };
}

/** The `stream:false` answer: the final chunk carrying the whole content and every tool call. */
export function collectChat(chunks: readonly ChatChunk[]): ChatChunk {
  const last = lastOf(chunks);
  const toolCalls = chunks.flatMap((c) => c.message.tool_calls ?? []);
  const content = chunks.map((c) => c.message.content).join("");
  return { ...last, message: { role: "assistant", content, ...(toolCalls.length > 0 && { tool_calls: toolCalls }) } };
}

function lastOf<T>(items: readonly T[]): T {
  const last = items[items.length - 1];
  if (last === undefined) throw new InternalError("the engine ended a stream without a done event");
  return last;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

