import type { OutputFormat, ToolCall } from "../../domain/chat.js";
import { GenerationError, RequestCancelledError, toAppError } from "../../domain/errors.js";
import type { FinishReason, GenerationEvent, Usage } from "../../domain/generation.js";
import { EventStream } from "../event-stream.js";
import { validateStructuredOutput } from "../structured-output.js";
import { isRecord, type ServerClient } from "./client.js";

/** One streaming request to llama-server, and what its answer must satisfy. */
export interface StreamPlan {
  route: "/v1/chat/completions" | "/completion" | "/infill";
  body: Record<string, unknown>;
  /** Checked against the whole text when generation ends normally ("text" checks nothing). */
  format: OutputFormat;
  /** Prompt token ids: the done event then carries them and the generated ones as `context`. */
  promptTokens?: number[];
}

/** llama-server's `timings` of a finished generation. */
export interface Timings {
  prompt_n?: number;
  prompt_ms?: number;
  predicted_n?: number;
  predicted_ms?: number;
  draft_n?: number;
  draft_n_accepted?: number;
}

/**
 * Runs a plan (prepared asynchronously: templating and tokenizing are requests too) and turns llama-server's
 * server-sent events into GenerationEvents: text as it streams, whole tool calls (their streamed argument pieces
 * joined and parsed) and one `done` with usage from the final `timings`. Aborting `signal`, or the consumer leaving,
 * closes the connection, which makes llama-server stop the task; what was generated then ends with `done`.
 */
export function runGeneration(
  client: ServerClient,
  plan: (signal: AbortSignal) => Promise<StreamPlan>,
  signal: AbortSignal,
  onTimings: (timings: Timings) => void,
): AsyncIterable<GenerationEvent> {
  const abort = new AbortController();
  const onAbort = (): void => abort.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  if (signal.aborted) abort.abort();
  const stream = new EventStream<GenerationEvent>(() => abort.abort());
  const answer = new Answer((text) => stream.push({ type: "text", text }));
  const start = process.hrtime.bigint();
  void (async () => {
    const { route, body, format, promptTokens } = await plan(abort.signal);
    await client.stream(route, body, abort.signal, (data) => answer.take(data));
    if (answer.timings) onTimings(answer.timings);
    if (answer.reason !== "length") validateStructuredOutput(format, answer.text);
    for (const call of answer.toolCalls()) stream.push({ type: "tool_call", call });
    stream.push({
      type: "done",
      reason: answer.reason,
      usage: answer.usage(start),
      ...(promptTokens && { context: [...promptTokens, ...answer.tokens] }),
    });
    stream.end();
  })()
    .catch((error: unknown) => {
      if (!abort.signal.aborted) return stream.fail(toAppError(error));
      if (answer.chunks === 0) return stream.fail(new RequestCancelledError());
      stream.push({ type: "done", reason: "stop", usage: answer.usage(start) });
      stream.end();
    })
    .finally(() => signal.removeEventListener("abort", onAbort));
  return stream;
}

/** Accumulates one streamed answer of either shape: OpenAI chat chunks, or /completion and /infill chunks. */
class Answer {
  text = "";
  tokens: number[] = [];
  reason: FinishReason = "stop";
  timings?: Timings;
  chunks = 0;
  private firstChunk?: bigint;
  private readonly calls = new Map<number, { id?: string; name: string; arguments: string }>();

  constructor(private readonly onText: (text: string) => void) {}

  take(data: Record<string, unknown>): void {
    if (isRecord(data.timings)) this.timings = data.timings as Timings;
    const choices = data.choices;
    if (Array.isArray(choices)) {
      for (const choice of choices) if (isRecord(choice)) this.choice(choice);
      return;
    }
    // /completion, /infill
    if (Array.isArray(data.tokens)) this.tokens.push(...data.tokens.filter((t): t is number => typeof t === "number"));
    if (typeof data.content === "string") this.textChunk(data.content);
    if (data.stop === true && data.stop_type === "limit") this.reason = "length";
  }

  private choice(choice: Record<string, unknown>): void {
    if (choice.finish_reason === "length") this.reason = "length";
    const delta = choice.delta;
    if (!isRecord(delta)) return;
    if (typeof delta.content === "string") this.textChunk(delta.content);
    if (!Array.isArray(delta.tool_calls)) return;
    this.chunks++;
    for (const piece of delta.tool_calls) {
      if (!isRecord(piece)) continue;
      const index = typeof piece.index === "number" ? piece.index : this.calls.size;
      const call = this.calls.get(index) ?? { name: "", arguments: "" };
      if (typeof piece.id === "string") call.id = piece.id;
      const fn = isRecord(piece.function) ? piece.function : {};
      if (typeof fn.name === "string") call.name += fn.name;
      if (typeof fn.arguments === "string") call.arguments += fn.arguments;
      this.calls.set(index, call);
    }
  }

  private textChunk(text: string): void {
    this.firstChunk ??= process.hrtime.bigint();
    this.chunks++;
    if (text === "") return;
    this.text += text;
    this.onText(text);
  }

  toolCalls(): ToolCall[] {
    return [...this.calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, call]) => {
        let parsed: unknown;
        try {
          parsed = call.arguments.trim() === "" ? {} : JSON.parse(call.arguments);
        } catch {
          throw new GenerationError(`the model called ${call.name} with arguments that are not JSON: ${call.arguments.slice(0, 200)}`);
        }
        if (!isRecord(parsed)) throw new GenerationError(`the model called ${call.name} with arguments that are not a JSON object`);
        return { ...(call.id !== undefined && { id: call.id }), name: call.name, arguments: parsed };
      });
  }

  /** From llama-server's timings (prompt tokens read, not those reused from the cache); measured here without them. */
  usage(start: bigint): Usage {
    const t = this.timings;
    if (t?.prompt_n !== undefined && t.predicted_n !== undefined) {
      return {
        promptTokens: t.prompt_n,
        completionTokens: t.predicted_n,
        promptDurationNs: Math.round((t.prompt_ms ?? 0) * 1e6),
        evalDurationNs: Math.round((t.predicted_ms ?? 0) * 1e6),
      };
    }
    const end = process.hrtime.bigint();
    const split = this.firstChunk ?? end;
    return { promptTokens: 0, completionTokens: this.tokens.length || this.chunks, promptDurationNs: Number(split - start), evalDurationNs: Number(end - split) };
  }
}
