import type { ToolCall } from "../../domain/chat.js";
import { InternalError } from "../../domain/errors.js";
import type { Usage } from "../../domain/generation.js";
import type { Outcome, RunEvent } from "../../inference/run-model.js";
import { randomId } from "../random-id.js";

/** Domain generation events → Anthropic's message (one object) or its stream events. */

/** Why a message ended, by Anthropic's names. */
export type StopReason = "end_turn" | "max_tokens" | "stop_sequence" | "tool_use";

export interface TextBlock {
  type: "text";
  text: string;
}
/** The model's reasoning. `signature` is always "" (Anthropic signs its own; nothing here checks one sent back). */
export interface ThinkingBlock {
  type: "thinking";
  thinking: string;
  signature: string;
}
export interface ToolUseBlock {
  type: "tool_use";
  id: string;
  name: string;
  input: Record<string, unknown>;
}
export type ContentBlock = TextBlock | ThinkingBlock | ToolUseBlock;

/**
 * Anthropic's usage: `input_tokens` are the prompt tokens read anew, `cache_read_input_tokens` those reused from
 * the cached prefix (the two add up to the whole prompt); nothing is ever written to a cache on request.
 */
export interface WireUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

/** What every message of one request shares: its id and the model as the client named it. */
export interface MessageHead {
  id: string;
  model: string;
}

/** The `stream: false` answer (and, with empty content and no stop reason, the stream's `message_start`). */
export interface AnthropicMessage extends MessageHead {
  type: "message";
  role: "assistant";
  content: ContentBlock[];
  stop_reason: StopReason | null;
  /** Which of the request's `stop_sequences` ended the message; null while the engines do not say. */
  stop_sequence: string | null;
  /** Details of a refusal, which never happens here: always null (the SDKs' types have it). */
  stop_details: null;
  usage: WireUsage;
}

export type ContentDelta =
  | { type: "text_delta"; text: string }
  | { type: "thinking_delta"; thinking: string }
  | { type: "input_json_delta"; partial_json: string };

/** One event of a stream: its `type` is also the SSE event name. */
export type StreamEvent =
  | { type: "message_start"; message: AnthropicMessage }
  | { type: "content_block_start"; index: number; content_block: ContentBlock }
  | { type: "content_block_delta"; index: number; delta: ContentDelta }
  | { type: "content_block_stop"; index: number }
  | { type: "message_delta"; delta: { stop_reason: StopReason; stop_sequence: string | null; stop_details: null }; usage: WireUsage }
  | { type: "message_stop" }
  | { type: "ping" };

/** A new message's head: a fresh `msg_` id, the model as named. */
export function messageHead(model: string): MessageHead {
  return { id: `msg_${randomId(24)}`, model };
}

/** A tool call as a `tool_use` block; ids are always Anthropic-style (`toolu_…`), whatever the engine named the call. */
export function toolUseBlock(call: ToolCall): ToolUseBlock {
  return { type: "tool_use", id: `toolu_${randomId(24)}`, name: call.name, input: call.arguments };
}

/** `max_tokens` when the limit (or the context) cut the reply, `tool_use` when it called tools, else `end_turn`. */
export function stopReason(outcome: Outcome, toolCalls: number): StopReason {
  if (outcome.reason === "length") return "max_tokens";
  return toolCalls > 0 ? "tool_use" : "end_turn";
}

/** Domain usage in Anthropic's terms (prompt tokens split into those read and those reused from the cache). */
export function toWireUsage(usage: Usage | undefined): WireUsage {
  const cached = usage?.cachedTokens ?? 0;
  return {
    input_tokens: (usage?.promptTokens ?? 0) - cached,
    output_tokens: usage?.completionTokens ?? 0,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
  };
}

/** The message before anything is known: no content, no stop reason, no usage yet. */
function emptyMessage(head: MessageHead): AnthropicMessage {
  return { ...head, type: "message", role: "assistant", content: [], stop_reason: null, stop_sequence: null, stop_details: null, usage: toWireUsage(undefined) };
}

/** The `stream: false` answer: consecutive text (or reasoning) in one block, each tool call a block, in their order. */
export async function collectMessage(events: AsyncIterable<RunEvent>, head: MessageHead): Promise<AnthropicMessage> {
  const message = emptyMessage(head);
  const content = message.content;
  let calls = 0;
  let outcome: Outcome | undefined;
  for await (const event of events) {
    const last = content.at(-1);
    switch (event.type) {
      case "text":
        if (event.text === "") break;
        if (last?.type === "text") last.text += event.text;
        else content.push({ type: "text", text: event.text });
        break;
      case "thinking":
        if (event.text === "") break;
        if (last?.type === "thinking") last.thinking += event.text;
        else content.push({ type: "thinking", thinking: event.text, signature: "" });
        break;
      case "tool_call":
        calls++;
        content.push(toolUseBlock(event.call));
        break;
      case "done":
        outcome = event.outcome;
        break;
      default:
        event satisfies never;
    }
  }
  if (!outcome) throw new InternalError("the engine ended a stream without a done event");
  return { ...message, stop_reason: stopReason(outcome, calls), usage: toWireUsage(outcome.usage) };
}

/** A mark that the engine has been silent for a while (see `withHeartbeat`). */
export interface Idle {
  type: "idle";
}

/**
 * The stream's events, in the order the SDKs' accumulators require: `message_start` (content [], stop_reason null),
 * then per block `content_block_start` with the empty fields the SDK appends to (`text: ""`, `thinking: ""` and
 * `signature: ""`, `input: {}`), its deltas, `content_block_stop`; then `message_delta` (stop reason, the whole
 * usage) and `message_stop`. A tool call is one block: start, its arguments as one `input_json_delta`, stop.
 * `message_start` is sent with the first engine event, or at the first `idle` mark if that comes first (the prompt
 * is still being read); every later `idle` mark is a `ping`.
 */
export async function* messageEvents(events: AsyncIterable<RunEvent | Idle>, head: MessageHead): AsyncGenerator<StreamEvent> {
  let started = false;
  let index = -1;
  let open: "text" | "thinking" | undefined;
  let calls = 0;
  let ended = false;
  const close = (): StreamEvent | undefined => {
    if (open === undefined) return undefined;
    open = undefined;
    return { type: "content_block_stop", index };
  };
  for await (const event of events) {
    if (!started) {
      started = true;
      yield { type: "message_start", message: emptyMessage(head) };
      if (event.type === "idle") continue;
    }
    switch (event.type) {
      case "idle":
        yield { type: "ping" };
        break;
      case "text":
      case "thinking": {
        if (event.text === "") break;
        if (open !== event.type) {
          const stop = close();
          if (stop) yield stop;
          open = event.type;
          index++;
          const block: ContentBlock = event.type === "text" ? { type: "text", text: "" } : { type: "thinking", thinking: "", signature: "" };
          yield { type: "content_block_start", index, content_block: block };
        }
        const delta: ContentDelta = event.type === "text" ? { type: "text_delta", text: event.text } : { type: "thinking_delta", thinking: event.text };
        yield { type: "content_block_delta", index, delta };
        break;
      }
      case "tool_call": {
        const stop = close();
        if (stop) yield stop;
        calls++;
        index++;
        const block = toolUseBlock(event.call);
        yield { type: "content_block_start", index, content_block: { ...block, input: {} } };
        yield { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: JSON.stringify(block.input) } };
        yield { type: "content_block_stop", index };
        break;
      }
      case "done": {
        const stop = close();
        if (stop) yield stop;
        yield { type: "message_delta", delta: { stop_reason: stopReason(event.outcome, calls), stop_sequence: null, stop_details: null }, usage: toWireUsage(event.outcome.usage) };
        yield { type: "message_stop" };
        ended = true;
        break;
      }
      default:
        event satisfies never;
    }
  }
  if (!ended) throw new InternalError("the engine ended a stream without a done event");
}
