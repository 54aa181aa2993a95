import type { OutputFormat, ToolCall } from "../../domain/chat.js";
import { ContextOverflowError, GenerationError, RequestCancelledError, toAppError } from "../../domain/errors.js";
import type { FinishReason, GenerationEvent, TokenLogprob, Usage } from "../../domain/generation.js";
import { EventStream } from "../event-stream.js";
import { validateStructuredOutput } from "../structured-output.js";
import { isRecord, type ServerClient } from "./client.js";
import { toTokenLogprobs } from "./logprobs.js";
import { ThinkingSplitter, type OutputPart } from "./thinking-split.js";

/** One streaming request to llama-server, and what its answer must satisfy. */
export interface StreamPlan {
  route: "/v1/chat/completions" | "/completion" | "/infill";
  body: Record<string, unknown>;
  /** Checked against the whole text when generation ends normally ("text" checks nothing). */
  format: OutputFormat;
  /** Prompt token ids: the done event then carries them and the generated ones as `context`. */
  promptTokens?: number[];
  /**
   * /completion only: the rendered prompt, whose output is split into reasoning and answer by its markers
   * (thinking-split.ts). The chat endpoint splits them itself (`reasoning_content`).
   */
  splitThinking?: string;
  /** Candidates kept per token when log-probabilities were asked for (absent: none asked). */
  logprobsTop?: number;
  /** Keep only the first tool call (parallel calls switched off). */
  singleToolCall?: boolean;
  /**
   * When llama-server finds the prompt too long for the context before anything was generated: the plan of a
   * prompt that fits (a shortened conversation), or a ContextOverflowError thrown from it.
   */
  refit?: (signal: AbortSignal) => Promise<StreamPlan>;
}

/** llama-server's `timings` of a finished generation (with `timings_per_token`, of every chunk so far). */
export interface Timings {
  prompt_n?: number;
  prompt_ms?: number;
  /** Prompt tokens reused from the slot's cache (not in prompt_n). */
  cache_n?: number;
  predicted_n?: number;
  predicted_ms?: number;
  draft_n?: number;
  draft_n_accepted?: number;
}

/**
 * Runs a plan (prepared asynchronously: templating and tokenizing are requests too) and turns llama-server's
 * server-sent events into GenerationEvents: reasoning and text as they stream, whole tool calls (their streamed
 * argument pieces joined and parsed) and one `done` with usage from the final `timings`. Aborting `signal`, or the
 * consumer leaving, closes the connection, which makes llama-server stop the task; what was generated then ends with
 * `done`.
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
  let answer = new Answer(stream);
  const start = process.hrtime.bigint();
  void (async () => {
    let current = await plan(abort.signal);
    const run = (p: StreamPlan): Promise<void> => {
      answer = new Answer(stream, p);
      return client.stream(p.route, { ...p.body, timings_per_token: true }, abort.signal, (data) => answer.take(data));
    };
    try {
      await run(current);
    } catch (error) {
      if (!(error instanceof ContextOverflowError) || answer.chunks > 0 || !current.refit) throw error;
      current = await current.refit(abort.signal);
      await run(current);
    }
    answer.finish();
    if (answer.timings) onTimings(answer.timings);
    if (answer.reason !== "length") validateStructuredOutput(current.format, answer.text);
    for (const call of answer.toolCalls()) stream.push({ type: "tool_call", call });
    stream.push({
      type: "done",
      reason: answer.reason,
      usage: answer.usage(start),
      ...(current.promptTokens && { context: [...current.promptTokens, ...answer.tokens] }),
    });
    stream.end();
  })()
    .catch((error: unknown) => {
      if (!abort.signal.aborted) return stream.fail(toAppError(error));
      if (answer.chunks === 0) return stream.fail(new RequestCancelledError());
      answer.finish();
      stream.push({ type: "done", reason: "stop", usage: answer.usage(start) });
      stream.end();
    })
    .finally(() => signal.removeEventListener("abort", onAbort));
  return stream;
}

/**
 * Accumulates one streamed answer of either shape (OpenAI chat chunks, or /completion and /infill chunks) and pushes
 * its reasoning and text as they come. Whitespace at the reasoning's start and end is dropped, as Ollama drops it
 * (llama.cpp's parser keeps the newline before `</think>`): an inner run is held until more reasoning follows it.
 */
class Answer {
  /** The answer's text (reasoning excluded). */
  text = "";
  tokens: number[] = [];
  reason: FinishReason = "stop";
  timings?: Timings;
  /** Chunks that carried output (text, reasoning or tool calls). */
  chunks = 0;
  private firstChunk?: bigint;
  private readonly calls = new Map<number, { id?: string; name: string; arguments: string }>();
  private readonly splitter?: ThinkingSplitter;
  /** Log-probabilities of tokens whose text has not been sent yet (held back by llama-server). */
  private pendingLogprobs: TokenLogprob[] = [];
  /** Whitespace at the end of the reasoning so far, sent only if more reasoning follows. */
  private thinkingSpace = "";
  private thoughtAny = false;
  /** Tokens generated before the answer began, once it has (after reasoning). */
  private reasoningTokens?: number;

  constructor(
    private readonly stream: EventStream<GenerationEvent>,
    private readonly plan?: StreamPlan,
  ) {
    if (plan?.splitThinking !== undefined) this.splitter = new ThinkingSplitter(plan.splitThinking);
  }

  take(data: Record<string, unknown>): void {
    if (isRecord(data.timings)) this.timings = data.timings as Timings;
    const choices = data.choices;
    if (Array.isArray(choices)) {
      for (const choice of choices) if (isRecord(choice)) this.choice(choice);
      return;
    }
    // /completion, /infill
    if (Array.isArray(data.tokens)) this.tokens.push(...data.tokens.filter((t): t is number => typeof t === "number"));
    const logprobs = this.logprobs(data.completion_probabilities);
    if (typeof data.content === "string") {
      const parts: OutputPart[] = this.splitter ? this.splitter.push(data.content) : [{ type: "text", text: data.content }];
      this.parts(parts, logprobs);
      if (data.content !== "") this.started();
    }
    if (data.stop === true && data.stop_type === "limit") this.reason = "length";
  }

  /** Flushes what the splitter and the reasoning's trimming still hold; call once the stream has ended. */
  finish(): void {
    if (this.splitter) this.parts(this.splitter.end(), []);
  }

  private choice(choice: Record<string, unknown>): void {
    if (choice.finish_reason === "length") this.reason = "length";
    const delta = choice.delta;
    if (!isRecord(delta)) return;
    const logprobs = this.logprobs(isRecord(choice.logprobs) ? choice.logprobs.content : undefined);
    const parts: OutputPart[] = [];
    if (typeof delta.reasoning_content === "string" && delta.reasoning_content !== "") parts.push({ type: "thinking", text: delta.reasoning_content });
    if (typeof delta.content === "string") parts.push({ type: "text", text: delta.content });
    const calls = Array.isArray(delta.tool_calls) ? delta.tool_calls : [];
    if (calls.length > 0) parts.push({ type: "text", text: "" }); // ends the reasoning, carries no text
    this.parts(parts, calls.length > 0 ? [] : logprobs);
    if (parts.length > 0) this.started();
    for (const piece of calls) {
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

  /** A chunk's log-probabilities, when they were asked for. */
  private logprobs(entries: unknown): TokenLogprob[] {
    return this.plan?.logprobsTop === undefined ? [] : toTokenLogprobs(entries, this.plan.logprobsTop);
  }

  /**
   * Sends a chunk's parts. The chunk's log-probabilities go with its text; a chunk without any part (its text held
   * back) keeps them for the next text; reasoning drops them (they are the reasoning's).
   */
  private parts(parts: readonly OutputPart[], logprobs: TokenLogprob[]): void {
    if (parts.length === 0) {
      this.pendingLogprobs.push(...logprobs);
      return;
    }
    const lastText = parts.findLastIndex((p) => p.type === "text" && p.text !== "");
    parts.forEach((part, i) => {
      if (part.type === "thinking") {
        this.pendingLogprobs = [];
        return this.thinking(part.text);
      }
      this.endThinking();
      if (part.text === "") return;
      this.text += part.text;
      const attached = i === lastText ? [...this.pendingLogprobs, ...logprobs] : [];
      if (i === lastText) this.pendingLogprobs = [];
      this.stream.push({ type: "text", text: part.text, ...(this.plan?.logprobsTop !== undefined && { logprobs: attached }) });
    });
  }

  private thinking(text: string): void {
    const joined = this.thoughtAny ? this.thinkingSpace + text : text.trimStart();
    const body = joined.trimEnd();
    this.thinkingSpace = joined.slice(body.length);
    if (body === "") return;
    this.thoughtAny = true;
    this.stream.push({ type: "thinking", text: body });
  }

  /** The answer (text or a tool call) begins: what was generated so far was reasoning. */
  private endThinking(): void {
    this.thinkingSpace = "";
    if (!this.thoughtAny || this.reasoningTokens !== undefined) return;
    this.reasoningTokens = Math.max(0, (this.timings?.predicted_n ?? this.chunks + 1) - 1);
  }

  private started(): void {
    this.firstChunk ??= process.hrtime.bigint();
    this.chunks++;
  }

  toolCalls(): ToolCall[] {
    const calls = [...this.calls.entries()]
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
    return this.plan?.singleToolCall ? calls.slice(0, 1) : calls;
  }

  /**
   * From llama-server's timings: every prompt token (those read, `prompt_n`, and those reused from the slot's cache,
   * `cache_n`), the reasoning as the tokens generated before the answer began; measured here without timings.
   */
  usage(start: bigint): Usage {
    const t = this.timings;
    if (t?.prompt_n !== undefined && t.predicted_n !== undefined) {
      const reasoning = this.thoughtAny ? (this.reasoningTokens ?? t.predicted_n) : undefined;
      return {
        promptTokens: t.prompt_n + (t.cache_n ?? 0),
        ...(t.cache_n !== undefined && { cachedTokens: t.cache_n }),
        completionTokens: t.predicted_n,
        ...(reasoning !== undefined && { reasoningTokens: reasoning }),
        promptDurationNs: Math.round((t.prompt_ms ?? 0) * 1e6),
        evalDurationNs: Math.round((t.predicted_ms ?? 0) * 1e6),
      };
    }
    const end = process.hrtime.bigint();
    const split = this.firstChunk ?? end;
    return { promptTokens: 0, completionTokens: this.tokens.length || this.chunks, promptDurationNs: Number(split - start), evalDurationNs: Number(end - split) };
  }
}
