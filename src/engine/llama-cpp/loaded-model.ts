import path from "node:path";
import {
  LlamaChat,
  LlamaCompletion,
  type ChatModelFunctions,
  type ChatWrapper,
  type LLamaChatGenerateResponseOptions,
  type Llama,
  type LlamaChatResponseChunk,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaGrammar,
  type LlamaModel,
  type LlamaText,
  type Token,
  type TokenBias,
  type TokenPredictor,
} from "node-llama-cpp";
import type { ChatRequest, CompletionRequest, LogprobsRequest, Message, OutputFormat } from "../../domain/chat.js";
import type { EmbedRequest, EmbedResult, RerankRequest, RerankResult, Token as DomainToken, TokenizeRequest } from "../../domain/embedding.js";
import { AppError, ContextOverflowError, InternalError, InvalidRequestError, RequestCancelledError } from "../../domain/errors.js";
import type { FinishReason, GenerationEvent } from "../../domain/generation.js";
import type { KvCacheUsage, LoadedModel, LoadSpec, ModelStats } from "../engine.js";
import { EventStream } from "../event-stream.js";
import { renderPromptTemplate } from "../prompt-template.js";
import { SessionSlots } from "../session-slots.js";
import { validateStructuredOutput } from "../structured-output.js";
import { hasLaterSystem, rendersSystemInPlace, SYSTEM_PROBE, systemAsUserTurns } from "../system-turns.js";
import { toChatHistory } from "./chat-history.js";
import { callingAFunction, ChatWrappers, describingFunctions } from "./chat-wrappers.js";
import { fromLlamaError } from "./errors.js";
import { EvaluationTap } from "./evaluation-tap.js";
import { LogprobsCollector } from "./logprobs.js";
import { toLlamaSampling, toTokenBias, type LlamaSampling } from "./sampling.js";
import { planTools, type ToolPlan } from "./tool-choice.js";
import { Vocabulary } from "./vocabulary.js";
import { disposeWithTimeout } from "./dispose.js";
import { PooledContexts } from "./pooled-contexts.js";
import type { BatchObserver } from "./batch-observer.js";

type StopReason = "eogToken" | "stopGenerationTrigger" | "functionCalls" | "maxTokens" | "abort" | "customStopTrigger";

/**
 * One model loaded by node-llama-cpp: a context holding `spec.slots` sequences (served together in one batch by
 * node-llama-cpp) and, created on first use, an embedding context and a ranking context. The caller (the scheduler)
 * never runs more than `spec.slots` requests at once; each takes a free sequence, whose KV cache keeps its last prompt
 * so a follow-up that shares the prefix is not re-read.
 */
export class LlamaCppModel implements LoadedModel {
  private readonly freeSequences: LlamaContextSequence[];
  private readonly wrappers: ChatWrappers;
  private readonly vocabulary: Vocabulary;
  /** The embedding and ranking contexts, made on first use. */
  private readonly pooled: PooledContexts;
  private unloading?: Promise<void>;
  /** Whether the chat wrapper renders a system message after other turns where it occurs (tried once, on first need). */
  private systemInPlace?: boolean;

  private readonly sequences: LlamaContextSequence[];
  /** The sequence that served each session last (ChatRequest.session). */
  private readonly sessions = new SessionSlots<LlamaContextSequence>();

  /**
   * @param predictor makes each sequence's token predictor (speculative decoding), or undefined for none
   * @param extras disposed after the context, before the model (e.g. a draft model and its context)
   */
  constructor(
    readonly spec: LoadSpec,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    predictor: (() => TokenPredictor) | undefined,
    private readonly extras: { dispose(): Promise<void> }[] = [],
    private readonly batches?: BatchObserver,
  ) {
    this.sequences = Array.from({ length: context.totalSequences }, () =>
      context.getSequence(predictor ? { tokenPredictor: predictor() } : {}),
    );
    this.freeSequences = [...this.sequences];
    this.wrappers = new ChatWrappers(model);
    this.vocabulary = new Vocabulary(model);
    this.pooled = new PooledContexts(model, spec, this.vocabulary, () => this.name());
  }

  stats(): ModelStats {
    let drafted = 0;
    let accepted = 0;
    for (const sequence of this.sequences) {
      const { validated, refuted } = sequence.tokenPredictions;
      drafted += validated + refuted;
      accepted += validated;
    }
    return { speculative: { drafted, accepted }, ...(this.batches && { batching: this.batches.stats() }), kvCache: this.kvCache() };
  }

  /** Every sequence's cells, and those the sequences serving a request hold now. */
  private kvCache(): KvCacheUsage {
    let used = 0;
    let size = 0;
    for (const sequence of this.sequences) {
      size += sequence.contextSize;
      if (!this.freeSequences.includes(sequence)) used += Math.min(sequence.nextTokenIndex, sequence.contextSize);
    }
    return { used, size };
  }

  /** The weights (on the GPU when any layer is offloaded) and what node-llama-cpp booked for the context. */
  get memory(): { ram: number; vram: number } {
    const context = this.context.memoryUsage;
    const onGpu = this.model.gpuLayers > 0 && this.llama.gpu !== false;
    return onGpu ? { ram: context.ram, vram: this.model.size + context.vram } : { ram: this.model.size + context.ram, vram: context.vram };
  }

  /** Whether the model's chat template has a thought segment node-llama-cpp can tell apart (it may think unasked). */
  private thinksByDefault(): boolean {
    return this.wrappers.for(undefined).settings.segments?.thought !== undefined;
  }

  chat(request: ChatRequest, signal: AbortSignal): AsyncIterable<GenerationEvent> {
    return this.runChat(request, signal, false);
  }

  complete(request: CompletionRequest, signal: AbortSignal): AsyncIterable<GenerationEvent> {
    const infill = request.suffix !== undefined && request.suffix !== "";
    const templated = !request.raw && request.template === undefined && !infill;
    // Reasoning comes apart from the answer (and thinking is switched off) only in node-llama-cpp's chat: a templated
    // prompt of a model that thinks, or that is asked to, runs there as one user turn.
    const fresh = (request.context ?? []).length === 0;
    if (templated && (request.thinking?.enabled === true || (fresh && this.thinksByDefault()))) {
      if ((request.context ?? []).length > 0) {
        return failed(
          new InvalidRequestError("thinking with an earlier completion's context is not supported by the llama-cpp engine (AI_SERVER_ENGINE=llama-server serves it)"),
        );
      }
      const messages: Message[] = [
        ...(request.system !== undefined && request.system !== "" ? [{ role: "system" as const, content: request.system }] : []),
        { role: "user", content: request.prompt },
      ];
      const chat: ChatRequest = { messages, format: request.format, sampling: request.sampling, thinking: request.thinking, ...(request.session !== undefined && { session: request.session }) };
      return this.runChat(request.logprobs ? { ...chat, logprobs: request.logprobs } : chat, signal, true);
    }
    let input: { tokens: Token[]; stopTriggers: LlamaText[] } | undefined;
    let tokenBias: TokenBias | undefined;
    try {
      input = infill ? undefined : this.completionInput(request);
      tokenBias = toTokenBias(this.model, this.vocabulary, request.sampling.logitBias);
    } catch (error) {
      return failed(error);
    }
    const prompt = (): readonly Token[] => input?.tokens ?? this.model.tokenize(request.prompt);
    return this.generate(signal, request, prompt, {}, async (sequence, output) => {
      const completion = new LlamaCompletion({ contextSequence: sequence, autoDisposeSequence: false });
      try {
        const sampling = toLlamaSampling(request.sampling, this.generationLimit());
        const grammar = await this.grammarFor(request.format);
        let shown: Token[] = [];
        const hooks = {
          signal: output.signal,
          stopOnAbortSignal: true,
          ...(tokenBias && { tokenBias }),
          // LlamaCompletion calls onToken, then onTextChunk with the same tokens' text.
          onToken: (tokens: Token[]) => void (shown = tokens),
          onTextChunk: (text: string) => {
            output.text(text, shown);
            shown = [];
          },
        };
        if (!input) {
          if (!completion.infillSupported) throw new InternalError("infill requested from a model without infill tokens");
          const result = await completion.generateInfillCompletionWithMeta(request.prompt, request.suffix ?? "", { ...hooks, ...sampling, ...grammar });
          return { text: result.response, stopReason: result.metadata.stopReason, calls: [], constrained: true };
        }
        const triggers = [...(sampling.customStopTriggers ?? []), ...input.stopTriggers];
        const result = await completion.generateCompletionWithMeta(input.tokens, {
          ...hooks,
          ...sampling,
          ...grammar,
          ...(triggers.length > 0 && { customStopTriggers: triggers }),
        });
        return { text: result.response, stopReason: result.metadata.stopReason, calls: [], constrained: true, promptTokens: input.tokens, wantContext: !request.raw };
      } finally {
        completion.dispose({ disposeSequence: false });
      }
    });
  }



  embed(request: EmbedRequest, signal: AbortSignal): Promise<EmbedResult> {
    return this.pooled.embed(request, signal);
  }

  rerank(request: RerankRequest, signal: AbortSignal): Promise<RerankResult> {
    return this.pooled.rerank(request, signal);
  }

  /**
   * The prompt `chat` would read for this conversation: rendered by the same chat wrapper (thinking setting, tools
   * documented or callable, a forced call) with an empty reply to come, and tokenized, start tokens included. The
   * whole conversation is counted: a chat of one longer than the context loses its oldest part first (`truncate`).
   */
  async countTokens(request: ChatRequest, signal: AbortSignal): Promise<number> {
    if (signal.aborted) throw new RequestCancelledError();
    return this.planChat({ ...request, truncate: true }).prompt().length; // counted, not refused, when too long
  }

  async tokenize(request: TokenizeRequest, signal: AbortSignal): Promise<DomainToken[]> {
    if (signal.aborted) throw new RequestCancelledError();
    return this.vocabulary.tokenize(request);
  }

  async detokenize(tokens: readonly number[], signal: AbortSignal): Promise<string> {
    if (signal.aborted) throw new RequestCancelledError();
    return this.vocabulary.detokenize(tokens);
  }

  unload(): Promise<void> {
    this.unloading ??= (async () => {
      await this.pooled.dispose();
      await disposeWithTimeout(() => this.context.dispose(), "context");
      for (const extra of this.extras) await disposeWithTimeout(() => extra.dispose(), "draft model");
      await disposeWithTimeout(() => this.model.dispose(), "model");
    })();
    return this.unloading;
  }

  /** A conversation through node-llama-cpp's LlamaChat; `wantContext` adds the prompt and reply tokens to `done`. */
  private runChat(request: ChatRequest, signal: AbortSignal, wantContext: boolean): AsyncIterable<GenerationEvent> {
    let plan: ChatPlan;
    try {
      plan = this.planChat(request);
    } catch (error) {
      return failed(error);
    }
    return this.generate(signal, request, plan.prompt, { stopAtContextEnd: request.shift === false, rendered: true }, async (sequence, output) => {
      const chat = new LlamaChat({ contextSequence: sequence, chatWrapper: plan.wrapper, autoDisposeSequence: false });
      try {
        const common = {
          signal: output.signal,
          stopOnAbortSignal: true,
          onResponseChunk: (chunk: LlamaChatResponseChunk) =>
            chunk.type === "segment" && chunk.segmentType === "thought" ? output.thinking(chunk.text, chunk.tokens) : output.text(chunk.text, chunk.tokens),
          ...plan.sampling,
          ...(plan.tokenBias && { tokenBias: plan.tokenBias }),
          ...(plan.thoughtBudget !== undefined && { budgets: { thoughtTokens: plan.thoughtBudget } }),
          ...(plan.contextShift && { contextShift: plan.contextShift }),
        };
        const history = toChatHistory(plan.messages);
        const functions = plan.tools.callable;
        const result = functions
          ? await chat.generateResponse(history, {
              ...common,
              functions,
              ...(plan.tools.maxCalls !== undefined && { maxParallelFunctionCalls: plan.tools.maxCalls }),
            })
          : await chat.generateResponse(history, { ...common, ...(await this.grammarFor(request.format)) });
        const calls = (result.functionCalls ?? []).map((c) => ({ name: c.functionName, arguments: asObject(c.params) }));
        // With tools, node-llama-cpp cannot also apply a format grammar, so the text is not held to the format.
        return {
          text: result.response,
          stopReason: result.metadata.stopReason,
          calls,
          constrained: !functions,
          ...(wantContext && { promptTokens: plan.prompt(), wantContext }),
        };
      } finally {
        chat.dispose({ disposeSequence: false });
      }
    });
  }

  /**
   * Everything a chat request asks that can be checked before it runs, as node-llama-cpp options: the chat wrapper
   * (thinking, tool choice), token bias, the thought budget, and the context limits. Throws for what cannot be served.
   */
  private planChat(request: ChatRequest): ChatPlan {
    if (request.messages.some((m) => m.role === "user" && (m.images?.length ?? 0) > 0)) {
      throw new InvalidRequestError("images are not supported by the llama-cpp engine");
    }
    const tools = planTools(request);
    if (tools.force && request.thinking?.enabled === true) {
      throw new InvalidRequestError("a required tool call with thinking on is not supported by the llama-cpp engine (AI_SERVER_ENGINE=llama-server serves it)");
    }
    let wrapper = this.wrappers.for(request.thinking);
    if (tools.described) wrapper = describingFunctions(wrapper, tools.described);
    if (tools.force) wrapper = callingAFunction(wrapper);
    const tokenBias = toTokenBias(this.model, this.vocabulary, request.sampling.logitBias);
    const messages = hasLaterSystem(request.messages) && !this.rendersSystemInPlace() ? systemAsUserTurns(request.messages) : request.messages;
    let tokens: Token[] | undefined;
    const prompt = (): Token[] => (tokens ??= this.renderChat(wrapper, messages, tools.callable));
    const contextSize = this.context.contextSize;
    const overflow = (length: number): ContextOverflowError =>
      new ContextOverflowError(`the conversation takes ${length} tokens, more than the context of ${contextSize} holds (truncation is off)`);
    if (request.truncate === false && prompt().length + 1 >= contextSize) throw overflow(prompt().length);
    const thoughtBudget = request.thinking?.enabled === false ? 0 : request.thinking?.budgetTokens;
    return {
      wrapper,
      tools,
      messages,
      prompt,
      sampling: toLlamaSampling(request.sampling, this.generationLimit()),
      ...(tokenBias && { tokenBias }),
      ...(thoughtBudget !== undefined && thoughtBudget >= 0 && { thoughtBudget: Math.floor(thoughtBudget) }),
      // Neither truncated nor shifted, the history never has to be cut: if node-llama-cpp still needs to (tokens it
      // adds while generating), that is an overflow, not something to do silently.
      ...(request.truncate === false &&
        request.shift === false && {
          contextShift: {
            strategy: () => {
              throw overflow(prompt().length);
            },
          },
        }),
    };
  }

  /** The conversation as the chat wrapper renders it for the model, with the functions it may call documented. */
  private renderChat(wrapper: ChatWrapper, messages: readonly Message[], functions: ChatModelFunctions | undefined): Token[] {
    const state = wrapper.generateContextState({
      chatHistory: [...toChatHistory(messages), { type: "model", response: [] }],
      ...(functions && { availableFunctions: functions }),
    });
    return state.contextText.tokenize(this.model.tokenizer);
  }

  /**
   * Whether the model's chat wrapper renders a system message after other turns where it occurs (SYSTEM_PROBE, once).
   * node-llama-cpp's Jinja wrapper, when the template fails on one, turns every system message (the first one too)
   * into a user message for that request alone: that counts as no, since the first one would change between turns.
   */
  private rendersSystemInPlace(): boolean {
    if (this.systemInPlace === undefined) {
      try {
        const state = this.wrappers.for(undefined).generateContextState({ chatHistory: [...toChatHistory(SYSTEM_PROBE), { type: "model", response: [] }] });
        const converted = (state as { transformedSystemMessagesToUserMessages?: boolean }).transformedSystemMessagesToUserMessages === true;
        this.systemInPlace = !converted && rendersSystemInPlace(state.contextText.toString());
      } catch {
        this.systemInPlace = false;
      }
    }
    return this.systemInPlace;
  }

  /** Tokens generated at most per request: what the context can hold. */
  private generationLimit(): number {
    return this.spec.contextSize;
  }


  /** The model's name for messages: its GGUF name, else its file's. */
  private name(): string {
    return this.model.fileInfo.metadata?.general?.name ?? path.basename(this.spec.modelPath);
  }

  private async grammarFor(format: OutputFormat): Promise<{ grammar?: LlamaGrammar }> {
    try {
      if (format.type === "json") return { grammar: await this.llama.getGrammarFor("json") };
      if (format.type === "json_schema") return { grammar: await this.llama.createGrammarForJsonSchema(format.schema as never) };
      return {};
    } catch (error) {
      throw fromLlamaError(error, "generate");
    }
  }

  /** The prompt as tokens: raw, rendered with a template override, or rendered by the model's chat template. */
  private completionInput(request: CompletionRequest): { tokens: Token[]; stopTriggers: LlamaText[] } {
    const context = this.vocabulary.check(request.context ?? [], "context");
    if (request.raw) return { tokens: this.model.tokenize(request.prompt, true), stopTriggers: [] };
    if (request.template !== undefined) {
      const text = renderPromptTemplate(request.template, { Prompt: request.prompt, ...(request.system !== undefined && { System: request.system }) });
      return { tokens: [...context, ...this.model.tokenize(text, true)], stopTriggers: [] };
    }
    const state = this.wrappers.for(request.thinking).generateContextState({
      chatHistory: toChatHistory([
        ...(request.system !== undefined && request.system !== "" ? [{ role: "system" as const, content: request.system }] : []),
        { role: "user", content: request.prompt },
      ]),
    });
    return { tokens: [...context, ...state.contextText.tokenize(this.model.tokenizer)], stopTriggers: state.stopGenerationTriggers };
  }

  /**
   * Takes the free sequence whose KV cache serves the prompt best: the one that served the previous turn of this
   * conversation, so only the new turn is read. Each is scored by the prefix it shares with the prompt minus the
   * cached tokens the prompt would overwrite (another conversation's, kept for its own follow-up); the best one is
   * taken when it keeps more than it loses. When none does (a new conversation, or a side request of an agent between
   * its turns), the one idle the longest is taken, as llama-server picks its slots: the conversations in use keep
   * their caches, however long or short they are, and a shared template header does not hand a stranger's cache over.
   * A request of a session takes the sequence that served the session last when it is free (SessionSlots); a session
   * new here (or whose sequence is busy) is chosen for in the same way among the sequences no other session was served
   * on last, when there are any, so that a shared system prompt does not hand it another session's cache.
   */
  private takeSequence(prompt: () => readonly Token[], session: string | undefined): LlamaContextSequence | undefined {
    const own = session === undefined ? undefined : this.sessions.ownFree(session, this.freeSequences);
    const spare = session === undefined || own !== undefined ? [] : this.freeSequences.filter((sequence) => !this.sessions.holds(sequence));
    const sequence = own ?? this.bestSequence(spare.length > 0 ? spare : this.freeSequences, prompt);
    if (sequence === undefined) return undefined;
    this.freeSequences.splice(this.freeSequences.indexOf(sequence), 1);
    if (session !== undefined && (own !== undefined || !this.sessions.has(session))) this.sessions.served(session, sequence);
    else this.sessions.taken(sequence);
    return sequence;
  }

  /** Of `candidates` (free, idle the longest first), the one whose cache keeps the most of the prompt (takeSequence). */
  private bestSequence(candidates: readonly LlamaContextSequence[], prompt: () => readonly Token[]): LlamaContextSequence | undefined {
    if (candidates.length <= 1) return candidates[0];
    let tokens: readonly Token[];
    try {
      tokens = prompt();
    } catch {
      tokens = []; // the generation itself reports what is wrong with the prompt
    }
    let best = 0; // freeSequences is in the order they were freed: the first has been idle the longest
    let bestScore = 0;
    candidates.forEach((sequence, index) => {
      const cached = sequence.contextTokens;
      const shared = commonPrefixLength(cached, tokens);
      const score = shared - (cached.length - shared);
      if (score > bestScore) [best, bestScore] = [index, score];
    });
    return candidates[best];
  }

  /**
   * Runs one generation on a free sequence and turns its output into a GenerationEvent stream. The sequence's
   * evaluation is watched (EvaluationTap) for usage: every prompt token and those reused from the KV cache, every
   * token sampled, and wall-clock time split at the first one; and for log-probabilities when they are asked for.
   * With `rendered` (a chat), the prompt is at most `prompt()`, the rendered conversation: tokens node-llama-cpp
   * writes after it before the model samples (a forced call's prefix, an opened thought) are the reply's, as
   * llama-server samples them under its grammar; so a chat reports the prompt countTokens counts. (A completion's
   * prompt is what LlamaCompletion evaluates, the start token it adds included.)
   * With `stopAtContextEnd`, generation stops with `length` where node-llama-cpp would shift the context.
   */
  private generate(
    signal: AbortSignal,
    request: { format: OutputFormat; logprobs?: LogprobsRequest; session?: string },
    prompt: () => readonly Token[],
    options: { stopAtContextEnd?: boolean; rendered?: boolean },
    run: (sequence: LlamaContextSequence, output: Output) => Promise<RunResult>,
  ): AsyncIterable<GenerationEvent> {
    const abort = new AbortController();
    const onAbort = (): void => abort.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    const stream = new EventStream<GenerationEvent>(() => abort.abort());
    const sequence = this.takeSequence(prompt, request.session);
    if (!sequence) {
      signal.removeEventListener("abort", onAbort);
      stream.fail(new InternalError("no free sequence: more requests than slots reached the model"));
      return stream;
    }
    const start = process.hrtime.bigint();
    const logprobs = request.logprobs && new LogprobsCollector(this.vocabulary);
    let contextEnd = false;
    const tap = new EvaluationTap(sequence, {
      ...(request.logprobs && { probabilities: { top: request.logprobs.top } }),
      onSample: (token, sample) => {
        if (sample) logprobs?.add(sample);
        // node-llama-cpp shifts the context once the sequence holds contextSize - 1 tokens (an end token ends anyway).
        if (options.stopAtContextEnd && !contextEnd && sequence.nextTokenIndex >= sequence.contextSize - 1 && !this.model.isEogToken(token)) {
          contextEnd = true;
          abort.abort();
        }
      },
    });
    const shown: Token[] = [];
    let reasoningTokens = 0;
    // The whitespace between a thought and the answer (Qwen3's "</think>\n\n") belongs to neither, as in llama.cpp.
    let trimAnswer = false;
    const output: Output = {
      signal: abort.signal,
      text: (chunk, tokens) => {
        shown.push(...tokens);
        const entries = logprobs?.take(tokens);
        const text = trimAnswer ? chunk.trimStart() : chunk;
        if (text === "") return;
        trimAnswer = false;
        stream.push({ type: "text", text, ...(entries && { logprobs: entries }) });
      },
      thinking: (text, tokens) => {
        reasoningTokens += tokens.length;
        logprobs?.skip(tokens);
        trimAnswer = true;
        if (text !== "") stream.push({ type: "thinking", text });
      },
    };
    const finish = (result: RunResult | undefined): void => {
      const stopped = result === undefined || result.stopReason === "maxTokens" || result.stopReason === "abort";
      if (result && !stopped && result.constrained) validateStructuredOutput(request.format, result.text);
      for (const call of result?.calls ?? []) stream.push({ type: "tool_call", call });
      const end = process.hrtime.bigint();
      const split = tap.firstSampleAt ?? end;
      const reason: FinishReason = contextEnd || result?.stopReason === "maxTokens" ? "length" : "stop";
      const promptTokens = options.rendered ? Math.min(tap.promptTokens, renderedLength(prompt) ?? tap.promptTokens) : tap.promptTokens;
      stream.push({
        type: "done",
        reason,
        usage: {
          promptTokens,
          cachedTokens: Math.min(tap.cachedTokens, promptTokens),
          // Every token sampled: reasoning, tool-call syntax and, when the model ended the reply, its end token (as
          // Ollama's eval_count and llama-server's count them); and those written into the reply for the model.
          completionTokens: tap.sampled + tap.promptTokens - promptTokens,
          ...(reasoningTokens > 0 && { reasoningTokens }),
          promptDurationNs: Number(split - start),
          evalDurationNs: Number(end - split),
        },
        ...(result?.wantContext && result.promptTokens && { context: [...result.promptTokens, ...shown] }),
      });
      stream.end();
    };
    const fail = (error: unknown): void => {
      stream.fail(error instanceof AppError ? error : signal.aborted ? new RequestCancelledError() : fromLlamaError(error, "generate"));
    };
    Promise.resolve()
      .then(() => {
        tap.install();
        return run(sequence, output);
      })
      .then(
        (result) => finish(result),
        // Stopped at the end of the context before any answer text, node-llama-cpp throws the abort.
        (error: unknown) => {
          if (contextEnd && !signal.aborted) finish(undefined);
          else throw error;
        },
      )
      .catch(fail)
      .finally(() => {
        tap.uninstall();
        signal.removeEventListener("abort", onAbort);
        this.freeSequences.push(sequence);
      });
    return stream;
  }
}

/** What the generation reports as it goes: answer text and reasoning, each with the tokens it came from. */
interface Output {
  signal: AbortSignal;
  text: (text: string, tokens: readonly Token[]) => void;
  thinking: (text: string, tokens: readonly Token[]) => void;
}

interface RunResult {
  text: string;
  stopReason: StopReason;
  calls: { name: string; arguments: Record<string, unknown> }[];
  /** Whether the output was generated under the request's format (and so must be validated against it). */
  constrained: boolean;
  promptTokens?: Token[];
  wantContext?: boolean;
}

interface ChatPlan {
  wrapper: ChatWrapper;
  tools: ToolPlan;
  /** The conversation as it is rendered (later system messages as user text where the wrapper takes none). */
  messages: readonly Message[];
  /** The rendered prompt (computed once, on first use). */
  prompt: () => Token[];
  sampling: LlamaSampling;
  tokenBias?: TokenBias;
  thoughtBudget?: number;
  contextShift?: LLamaChatGenerateResponseOptions["contextShift"];
}

/** The rendered prompt's length, or undefined when it cannot be rendered (the generation reports why). */
function renderedLength(prompt: () => readonly Token[]): number | undefined {
  try {
    return prompt().length;
  } catch {
    return undefined;
  }
}

/** A stream that fails at once (a request refused before it runs). */
function failed(error: unknown): AsyncIterable<GenerationEvent> {
  const stream = new EventStream<GenerationEvent>();
  stream.fail(error instanceof AppError ? error : fromLlamaError(error, "generate"));
  return stream;
}



function commonPrefixLength(a: readonly Token[], b: readonly Token[]): number {
  const limit = Math.min(a.length, b.length);
  let i = 0;
  while (i < limit && a[i] === b[i]) i++;
  return i;
}

function asObject(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

