import type { ToolCall } from "../../domain/chat.js";
import { InternalError, type AppError } from "../../domain/errors.js";
import type { TokenLogprob } from "../../domain/generation.js";
import type { Outcome, RunEvent } from "../../inference/run-model.js";
import { toWireLogprobs } from "./response.js";
import {
  newId,
  responseError,
  toResponseUsage,
  type FunctionCallOutput,
  type ItemStatus,
  type MessageOutput,
  type OutputItem,
  type OutputText,
  type ReasoningOutput,
  type ResponseObject,
} from "./responses-object.js";

/** One server-sent event of a response stream: its type (also the SSE `event:` line), its number, its fields. */
export interface ResponseEvent {
  type: string;
  sequence_number: number;
  [field: string]: unknown;
}

/** How a response ended: the events that close it, the response whole, and the last event that carries it. */
export interface ResponseEnd {
  /** The open output item's closing events. */
  closing: ResponseEvent[];
  response: ResponseObject;
  /** `response.completed`, or `response.incomplete` when the output token limit cut it. */
  final: ResponseEvent;
}

interface OpenMessage {
  item: MessageOutput;
  part: OutputText;
  index: number;
}
interface OpenReasoning {
  item: ReasoningOutput;
  part: ReasoningOutput["summary"][number];
  index: number;
}
type OpenItem = OpenMessage | OpenReasoning;

/**
 * One response being generated: domain generation events in, the Responses API's stream events out, in the order
 * OpenAI's SDK accumulators require, while the output items are built. The same run makes the `stream: false`
 * answer (its events unsent), so both forms always agree.
 *
 * Order: `response.created`, `response.in_progress`; then each output item in append order, from
 * `response.output_item.added` to `response.output_item.done` — reasoning (`reasoning_summary_part.added`,
 * `reasoning_summary_text.delta`…, `.done`, `reasoning_summary_part.done`), a message (`content_part.added`,
 * `output_text.delta`…, `output_text.done`, `content_part.done`), a function call (whole: one
 * `function_call_arguments.delta`, then `.done`); then `response.completed` (or `.incomplete`, or `.failed`). Text
 * after reasoning, or reasoning after text, closes the open item and opens the next.
 */
export class ResponseRun {
  private sequence = 0;
  private readonly output: OutputItem[] = [];
  private open: OpenItem | undefined;
  private outcome: Outcome | undefined;

  constructor(private readonly shell: ResponseObject) {}

  /** `response.created` and `response.in_progress`, each with the response as it starts. */
  start(): ResponseEvent[] {
    return [this.event("response.created", { response: this.shell }), this.event("response.in_progress", { response: this.shell })];
  }

  /** The stream events of one generation event (none for the final `done`, which `finish` answers). */
  add(event: RunEvent): ResponseEvent[] {
    switch (event.type) {
      case "text":
        return event.text === "" && !event.logprobs?.length ? [] : this.text(event.text, event.logprobs);
      case "thinking":
        return event.text === "" ? [] : this.thinking(event.text);
      case "tool_call":
        return [...this.close("completed"), ...this.functionCall(event.call)];
      case "done":
        this.outcome = event.outcome;
        return [];
      default:
        return event satisfies never;
    }
  }

  /** Closes the open item and makes the final response (incomplete when the output token limit cut it). */
  finish(): ResponseEnd {
    const outcome = this.outcome;
    if (!outcome) throw new InternalError("the engine ended a stream without a done event");
    const incomplete = outcome.reason === "length";
    const closing = this.close(incomplete ? "incomplete" : "completed");
    const response: ResponseObject = {
      ...this.shell,
      status: incomplete ? "incomplete" : "completed",
      incomplete_details: incomplete ? { reason: "max_output_tokens" } : null,
      output: structuredClone(this.output),
      usage: toResponseUsage(outcome),
    };
    return { closing, response, final: this.event(incomplete ? "response.incomplete" : "response.completed", { response }) };
  }

  /** `response.failed`: the error (with the code clients act on) and the output so far, its open item incomplete. */
  fail(error: AppError): ResponseEvent {
    if (isMessage(this.open)) this.open.item.status = "incomplete";
    const response: ResponseObject = { ...this.shell, status: "failed", error: responseError(error), output: structuredClone(this.output), usage: null };
    return this.event("response.failed", { response });
  }

  /** A bare `error` event (OpenAI's stream-level error), for a failure that could not become `response.failed`. */
  errorEvent(error: { code: string; message: string }): ResponseEvent {
    return this.event("error", { code: error.code, message: error.message, param: null });
  }

  private text(text: string, logprobs: readonly TokenLogprob[] | undefined): ResponseEvent[] {
    const events: ResponseEvent[] = [];
    const open = isMessage(this.open) ? this.open : this.openMessage(events);
    const wire = logprobs ? toWireLogprobs(logprobs) : [];
    open.part.text += text;
    open.part.logprobs.push(...wire);
    const at = { item_id: open.item.id, output_index: open.index, content_index: 0 };
    events.push(this.event("response.output_text.delta", { ...at, delta: text, logprobs: wire }));
    return events;
  }

  private thinking(text: string): ResponseEvent[] {
    const events: ResponseEvent[] = [];
    const open = this.open !== undefined && !isMessage(this.open) ? this.open : this.openReasoning(events);
    open.part.text += text;
    events.push(this.event("response.reasoning_summary_text.delta", { item_id: open.item.id, output_index: open.index, summary_index: 0, delta: text }));
    return events;
  }

  /** Closes the open item, then opens a message (its `added` events go to `events`). */
  private openMessage(events: ResponseEvent[]): OpenMessage {
    events.push(...this.close("completed"));
    const item: MessageOutput = { id: newId("msg"), type: "message", status: "in_progress", role: "assistant", content: [] };
    const index = this.append(item, events);
    const part: OutputText = { type: "output_text", text: "", annotations: [], logprobs: [] };
    events.push(this.event("response.content_part.added", { item_id: item.id, output_index: index, content_index: 0, part: structuredClone(part) }));
    item.content.push(part);
    const open = { item, part, index };
    this.open = open;
    return open;
  }

  /** Closes the open item, then opens a reasoning item (its `added` events go to `events`). */
  private openReasoning(events: ResponseEvent[]): OpenReasoning {
    events.push(...this.close("completed"));
    const item: ReasoningOutput = { id: newId("rs"), type: "reasoning", summary: [] };
    const index = this.append(item, events);
    const part = { type: "summary_text" as const, text: "" };
    events.push(this.event("response.reasoning_summary_part.added", { item_id: item.id, output_index: index, summary_index: 0, part: structuredClone(part) }));
    item.summary.push(part);
    const open = { item, part, index };
    this.open = open;
    return open;
  }

  /** The closing events of the open item (none when none is open); a message ends with `status`. */
  private close(status: ItemStatus): ResponseEvent[] {
    const open = this.open;
    if (!open) return [];
    this.open = undefined;
    if (isMessage(open)) {
      const { item, part, index } = open;
      const at = { item_id: item.id, output_index: index, content_index: 0 };
      item.status = status;
      return [
        this.event("response.output_text.done", { ...at, text: part.text, logprobs: part.logprobs }),
        this.event("response.content_part.done", { ...at, part: structuredClone(part) }),
        this.event("response.output_item.done", { output_index: index, item: structuredClone(item) }),
      ];
    }
    const { item, part, index } = open;
    const at = { item_id: item.id, output_index: index, summary_index: 0 };
    return [
      this.event("response.reasoning_summary_text.done", { ...at, text: part.text }),
      this.event("response.reasoning_summary_part.done", { ...at, part: structuredClone(part) }),
      this.event("response.output_item.done", { output_index: index, item: structuredClone(item) }),
    ];
  }

  /** A whole call: added (no arguments yet), its arguments in one delta, done. */
  private functionCall(call: ToolCall): ResponseEvent[] {
    const callId = call.id ?? newId("call");
    const item: FunctionCallOutput = { id: newId("fc"), type: "function_call", status: "in_progress", call_id: callId, name: call.name, arguments: "" };
    const events: ResponseEvent[] = [];
    const index = this.append(item, events);
    const args = JSON.stringify(call.arguments);
    item.arguments = args;
    item.status = "completed";
    const at = { item_id: item.id, output_index: index };
    events.push(
      this.event("response.function_call_arguments.delta", { ...at, delta: args }),
      this.event("response.function_call_arguments.done", { ...at, name: call.name, arguments: args }),
      this.event("response.output_item.done", { output_index: index, item: structuredClone(item) }),
    );
    return events;
  }

  /** Appends an output item (its `added` event carries it as it starts); returns its output index. */
  private append(item: OutputItem, events: ResponseEvent[]): number {
    const index = this.output.length;
    events.push(this.event("response.output_item.added", { output_index: index, item: structuredClone(item) }));
    this.output.push(item);
    return index;
  }

  private event(type: string, fields: Record<string, unknown>): ResponseEvent {
    return { type, sequence_number: this.sequence++, ...fields };
  }
}

function isMessage(open: OpenItem | undefined): open is OpenMessage {
  return open?.item.type === "message";
}
