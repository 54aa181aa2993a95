import type { ToolCall } from "../../domain/chat.js";
import { InternalError } from "../../domain/errors.js";
import type { TokenLogprob } from "../../domain/generation.js";
import type { Outcome } from "../../inference/run-model.js";
import type { ChoiceEvent } from "./choices.js";
import { toWireLogprobs, toWireUsage, type ResponseHead, type WireTokenLogprob, type WireUsage } from "./response.js";
import { randomId } from "../random-id.js";

/** Domain generation events → OpenAI's chat completion (one object) or its chunks (a stream). */

/** Why a choice ended: its stop (or end of turn), its token limit, or tool calls to run. */
export type FinishReason = "stop" | "length" | "tool_calls";

/** A tool call in a message: arguments as a JSON string, as OpenAI sends them. */
export interface WireToolCallOut {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** A choice's log-probabilities, one entry per generated token. */
export interface ChatLogprobs {
  content: WireTokenLogprob[];
  refusal: null;
}

/** The `stream: false` answer. */
export interface ChatCompletion extends ResponseHead {
  object: "chat.completion";
  choices: Array<{
    index: number;
    message: {
      role: "assistant";
      /** null when the reply is only tool calls. */
      content: string | null;
      refusal: null;
      /** The reasoning, under both names clients read (llama.cpp and DeepSeek's, and Ollama's and OpenRouter's). */
      reasoning_content?: string;
      reasoning?: string;
      tool_calls?: WireToolCallOut[];
    };
    logprobs: ChatLogprobs | null;
    finish_reason: FinishReason;
  }>;
  usage: WireUsage;
}

/** What one chunk adds to a choice's message. */
export interface ChatDelta {
  role?: "assistant";
  content?: string;
  reasoning_content?: string;
  reasoning?: string;
  tool_calls?: Array<WireToolCallOut & { index: number }>;
}

/** One event of a stream. */
export interface ChatCompletionChunk extends ResponseHead {
  object: "chat.completion.chunk";
  choices: Array<{ index: number; delta: ChatDelta; logprobs: ChatLogprobs | null; finish_reason: FinishReason | null }>;
  /** Present (null, then the totals in a last chunk without choices) only with `stream_options.include_usage`. */
  usage?: WireUsage | null;
}

/** A tool call on the wire: its id (the model's, or a new one), arguments as a JSON string. */
export function toWireToolCall(call: ToolCall): WireToolCallOut {
  return { id: call.id ?? `call_${randomId(24)}`, type: "function", function: { name: call.name, arguments: JSON.stringify(call.arguments) } };
}

/** `tool_calls` when the reply called tools (and was not cut by its limit). */
export function finishReason(outcome: Outcome, toolCalls: number): FinishReason {
  if (outcome.reason === "length") return "length";
  return toolCalls > 0 ? "tool_calls" : "stop";
}

function chatLogprobs(logprobs: readonly TokenLogprob[] | undefined): ChatLogprobs | null {
  return logprobs ? { content: toWireLogprobs(logprobs), refusal: null } : null;
}

/**
 * The stream's chunks: for each choice, a first chunk whose delta is `{role: "assistant", content: ""}` (sent when
 * the choice's first event exists, never before), content and reasoning deltas (with their log-probabilities when
 * asked), each tool call whole in one delta (index, id, type, name, arguments), then a chunk with an empty delta and
 * the finish reason. With `includeUsage`, every chunk has `usage: null` and a last chunk without choices carries
 * the totals.
 */
export async function* chatChunks(events: AsyncIterable<ChoiceEvent>, head: ResponseHead, count: number, includeUsage: boolean): AsyncGenerator<ChatCompletionChunk> {
  const started = new Set<number>();
  const toolCalls = new Map<number, number>();
  const outcomes = new Map<number, Outcome>();
  const chunk = (index: number, delta: ChatDelta, logprobs: ChatLogprobs | null = null, finish: FinishReason | null = null): ChatCompletionChunk => ({
    ...head,
    object: "chat.completion.chunk",
    choices: [{ index, delta, logprobs, finish_reason: finish }],
    ...(includeUsage && { usage: null }),
  });
  for await (const { index, event } of events) {
    if (!started.has(index)) {
      started.add(index);
      yield chunk(index, { role: "assistant", content: "" });
    }
    switch (event.type) {
      case "text":
        if (event.text !== "" || event.logprobs?.length) yield chunk(index, { content: event.text }, chatLogprobs(event.logprobs));
        break;
      case "thinking":
        if (event.text !== "") yield chunk(index, { reasoning_content: event.text, reasoning: event.text });
        break;
      case "tool_call": {
        const callIndex = toolCalls.get(index) ?? 0;
        toolCalls.set(index, callIndex + 1);
        yield chunk(index, { tool_calls: [{ index: callIndex, ...toWireToolCall(event.call) }] });
        break;
      }
      case "done":
        outcomes.set(index, event.outcome);
        yield chunk(index, {}, null, finishReason(event.outcome, toolCalls.get(index) ?? 0));
        break;
      default:
        event satisfies never;
    }
  }
  if (includeUsage) yield { ...head, object: "chat.completion.chunk", choices: [], usage: toWireUsage(outcomes, count) };
}

interface ChoiceState {
  text: string;
  thinking: string;
  calls: WireToolCallOut[];
  logprobs?: TokenLogprob[];
  outcome?: Outcome;
}

/** The `stream: false` answer: every choice whole, in index order; `logprobs` when the request asked for them. */
export async function collectChatCompletion(events: AsyncIterable<ChoiceEvent>, head: ResponseHead, count: number, logprobs: boolean): Promise<ChatCompletion> {
  const states = Array.from({ length: count }, (): ChoiceState => ({ text: "", thinking: "", calls: [] }));
  for await (const { index, event } of events) {
    const state = states[index];
    if (!state) throw new InternalError(`an event for choice ${index} of ${count}`);
    if (event.type === "text") {
      state.text += event.text;
      if (event.logprobs) (state.logprobs ??= []).push(...event.logprobs);
    } else if (event.type === "thinking") state.thinking += event.text;
    else if (event.type === "tool_call") state.calls.push(toWireToolCall(event.call));
    else state.outcome = event.outcome;
  }
  const outcomes = new Map<number, Outcome>();
  const choices = states.map((state, index): ChatCompletion["choices"][number] => {
    const outcome = state.outcome;
    if (!outcome) throw new InternalError("the engine ended a stream without a done event");
    outcomes.set(index, outcome);
    return {
      index,
      message: {
        role: "assistant",
        content: state.text === "" && state.calls.length > 0 ? null : state.text,
        refusal: null,
        ...(state.thinking !== "" && { reasoning_content: state.thinking, reasoning: state.thinking }),
        ...(state.calls.length > 0 && { tool_calls: state.calls }),
      },
      logprobs: logprobs ? chatLogprobs(state.logprobs ?? []) : null,
      finish_reason: finishReason(outcome, state.calls.length),
    };
  });
  return { ...head, object: "chat.completion", choices, usage: toWireUsage(outcomes, count) };
}
