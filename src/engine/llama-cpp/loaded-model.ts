import {
  LlamaChat,
  LlamaCompletion,
  resolveChatWrapper,
  type ChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaGrammar,
  type LlamaModel,
  type LlamaText,
  type Token,
  type TokenPredictor,
} from "node-llama-cpp";
import type { ChatRequest, CompletionRequest, OutputFormat } from "../../domain/chat.js";
import type { EmbedRequest, EmbedResult } from "../../domain/embedding.js";
import { ContextOverflowError, InternalError, RequestCancelledError } from "../../domain/errors.js";
import type { FinishReason, GenerationEvent } from "../../domain/generation.js";
import type { LoadedModel, LoadSpec, ModelStats } from "../engine.js";
import { EventStream } from "../event-stream.js";
import { renderPromptTemplate } from "../prompt-template.js";
import { validateStructuredOutput } from "../structured-output.js";
import { toChatHistory, toFunctions } from "./chat-history.js";
import { fromLlamaError } from "./errors.js";
import { toLlamaSampling } from "./sampling.js";
import { disposeWithTimeout } from "./dispose.js";
import { Mutex } from "./mutex.js";
import type { BatchObserver } from "./batch-observer.js";

type StopReason = "eogToken" | "stopGenerationTrigger" | "functionCalls" | "maxTokens" | "abort" | "customStopTrigger";

/**
 * One model loaded by node-llama-cpp: a context holding `spec.slots` sequences (served together in one batch by
 * node-llama-cpp) and, created on first use, an embedding context. The caller (the scheduler) never runs more than
 * `spec.slots` requests at once; each takes a free sequence, whose KV cache keeps its last prompt so a follow-up
 * that shares the prefix is not re-read.
 */
export class LlamaCppModel implements LoadedModel {
  private readonly freeSequences: LlamaContextSequence[];
  private readonly chatWrapper: ChatWrapper;
  private embedding?: Promise<LlamaEmbeddingContext>;
  private readonly embedLock = new Mutex();
  private unloading?: Promise<void>;

  private readonly sequences: LlamaContextSequence[];

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
    this.chatWrapper = resolveChatWrapper(model);
  }

  stats(): ModelStats {
    let drafted = 0;
    let accepted = 0;
    for (const sequence of this.sequences) {
      const { validated, refuted } = sequence.tokenPredictions;
      drafted += validated + refuted;
      accepted += validated;
    }
    return { speculative: { drafted, accepted }, ...(this.batches && { batching: this.batches.stats() }) };
  }

  /** The weights (on the GPU when any layer is offloaded) and what node-llama-cpp booked for the context. */
  get memory(): { ram: number; vram: number } {
    const context = this.context.memoryUsage;
    const onGpu = this.model.gpuLayers > 0 && this.llama.gpu !== false;
    return onGpu ? { ram: context.ram, vram: this.model.size + context.vram } : { ram: this.model.size + context.ram, vram: context.vram };
  }

  chat(request: ChatRequest, signal: AbortSignal): AsyncIterable<GenerationEvent> {
    return this.generate(signal, request.format, () => this.chatPromptTokens(request), async (sequence, hooks) => {
      const chat = new LlamaChat({ contextSequence: sequence, chatWrapper: this.chatWrapper, autoDisposeSequence: false });
      try {
        const tools = request.tools ?? [];
        const common = { ...hooks, ...toLlamaSampling(request.sampling, this.generationLimit()) };
        const result =
          tools.length > 0
            ? await chat.generateResponse(toChatHistory(request.messages), { ...common, functions: toFunctions(tools) })
            : await chat.generateResponse(toChatHistory(request.messages), { ...common, ...(await this.grammarFor(request.format)) });
        const calls = (result.functionCalls ?? []).map((c) => ({ name: c.functionName, arguments: asObject(c.params) }));
        // With tools, node-llama-cpp cannot also apply a format grammar, so the text is not held to the format.
        return { text: result.response, stopReason: result.metadata.stopReason, calls, constrained: tools.length === 0 };
      } finally {
        chat.dispose({ disposeSequence: false });
      }
    });
  }

  complete(request: CompletionRequest, signal: AbortSignal): AsyncIterable<GenerationEvent> {
    const prompt = (): readonly Token[] =>
      request.suffix !== undefined && request.suffix !== "" ? this.model.tokenize(request.prompt) : this.completionInput(request).tokens;
    return this.generate(signal, request.format, prompt, async (sequence, hooks) => {
      const completion = new LlamaCompletion({ contextSequence: sequence, autoDisposeSequence: false });
      try {
        const sampling = toLlamaSampling(request.sampling, this.generationLimit());
        const grammar = await this.grammarFor(request.format);
        if (request.suffix !== undefined && request.suffix !== "") {
          if (!completion.infillSupported) throw new InternalError("infill requested from a model without infill tokens");
          const result = await completion.generateInfillCompletionWithMeta(request.prompt, request.suffix, { ...hooks, ...sampling, ...grammar });
          return { text: result.response, stopReason: result.metadata.stopReason, calls: [], constrained: true };
        }
        const { tokens, stopTriggers } = this.completionInput(request);
        const triggers = [...(sampling.customStopTriggers ?? []), ...stopTriggers];
        const result = await completion.generateCompletionWithMeta(tokens, {
          ...hooks,
          ...sampling,
          ...grammar,
          ...(triggers.length > 0 && { customStopTriggers: triggers }),
        });
        return { text: result.response, stopReason: result.metadata.stopReason, calls: [], constrained: true, promptTokens: tokens, wantContext: !request.raw };
      } finally {
        completion.dispose({ disposeSequence: false });
      }
    });
  }

  async embed(request: EmbedRequest, signal: AbortSignal): Promise<EmbedResult> {
    if (request.inputs.length === 0) return { embeddings: [], promptTokens: 0 };
    this.embedding ??= this.model.createEmbeddingContext({ contextSize: this.spec.contextSize, threads: this.spec.threads });
    const context = await this.embedding.catch((error: unknown) => {
      this.embedding = undefined;
      throw fromLlamaError(error, "load");
    });
    return this.embedLock.run(async () => {
      const embeddings: number[][] = [];
      let promptTokens = 0;
      for (const input of request.inputs) {
        if (signal.aborted) throw new RequestCancelledError();
        let tokens = typeof input === "string" ? this.model.tokenize(input) : (input as Token[]);
        // The embedding context adds BOS/EOS and needs the input strictly shorter than the context.
        const limit = this.spec.contextSize - 3;
        if (tokens.length > limit) {
          if (!request.truncate) {
            throw new ContextOverflowError(`input of ${tokens.length} tokens exceeds the context length of ${this.spec.contextSize}`);
          }
          tokens = tokens.slice(0, limit);
        }
        promptTokens += tokens.length;
        const { vector } = await context.getEmbeddingFor(tokens).catch((error: unknown) => {
          throw fromLlamaError(error, "generate");
        });
        embeddings.push(normalise([...vector], request.dimensions));
      }
      return { embeddings, promptTokens };
    });
  }

  async rerank(): Promise<never> {
    throw new InternalError("rerank: not yet served by this engine");
  }

  async detokenize(): Promise<never> {
    throw new InternalError("detokenize: not yet served by this engine");
  }

  async tokenize(): Promise<never> {
    throw new InternalError("tokenize: not yet served by this engine");
  }

  unload(): Promise<void> {
    this.unloading ??= (async () => {
      const embedding = await this.embedding?.catch(() => undefined);
      if (embedding) await disposeWithTimeout(() => embedding.dispose(), "embedding context");
      await disposeWithTimeout(() => this.context.dispose(), "context");
      for (const extra of this.extras) await disposeWithTimeout(() => extra.dispose(), "draft model");
      await disposeWithTimeout(() => this.model.dispose(), "model");
    })();
    return this.unloading;
  }

  /** Tokens generated at most per request: what the context can hold. */
  private generationLimit(): number {
    return this.spec.contextSize;
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
    const context = request.context ?? [];
    if (request.raw) return { tokens: this.model.tokenize(request.prompt, true), stopTriggers: [] };
    if (request.template !== undefined) {
      const text = renderPromptTemplate(request.template, { Prompt: request.prompt, ...(request.system !== undefined && { System: request.system }) });
      return { tokens: [...context, ...this.model.tokenize(text, true)] as Token[], stopTriggers: [] };
    }
    const state = this.chatWrapper.generateContextState({
      chatHistory: toChatHistory([
        ...(request.system !== undefined && request.system !== "" ? [{ role: "system" as const, content: request.system }] : []),
        { role: "user", content: request.prompt },
      ]),
    });
    return { tokens: [...context, ...state.contextText.tokenize(this.model.tokenizer)] as Token[], stopTriggers: state.stopGenerationTriggers };
  }

  /**
   * Takes the free sequence whose KV cache serves the prompt best: the one that served the previous turn of this
   * conversation, so only the new turn is read. Each is scored by the prefix it shares with the prompt minus the
   * cached tokens the prompt would overwrite (another conversation's, kept for its own follow-up), so a shared
   * template header does not hand a stranger's cache over when an empty sequence is free. On a tie, the one idle
   * the longest.
   */
  private takeSequence(prompt: () => readonly Token[]): LlamaContextSequence | undefined {
    if (this.freeSequences.length <= 1) return this.freeSequences.pop();
    let tokens: readonly Token[];
    try {
      tokens = prompt();
    } catch {
      tokens = []; // the generation itself reports what is wrong with the prompt
    }
    let best = 0;
    let bestScore = -Infinity;
    this.freeSequences.forEach((sequence, index) => {
      const cached = sequence.contextTokens;
      const shared = commonPrefixLength(cached, tokens);
      const score = shared - (cached.length - shared);
      if (score > bestScore) [best, bestScore] = [index, score];
    });
    return this.freeSequences.splice(best, 1)[0];
  }

  /** The conversation as the chat wrapper renders it for the model (without tools' documentation when there are none). */
  private chatPromptTokens(request: ChatRequest): Token[] {
    const tools = request.tools ?? [];
    const state = this.chatWrapper.generateContextState({
      chatHistory: toChatHistory(request.messages),
      ...(tools.length > 0 && { availableFunctions: toFunctions(tools) }),
    });
    return state.contextText.tokenize(this.model.tokenizer);
  }

  /**
   * Runs one generation on a free sequence and turns its callbacks into a GenerationEvent stream, with usage
   * measured from the sequence's token meter and wall-clock time split at the first generated token.
   */
  private generate(
    signal: AbortSignal,
    format: OutputFormat,
    prompt: () => readonly Token[],
    run: (sequence: LlamaContextSequence, hooks: Hooks) => Promise<RunResult>,
  ): AsyncIterable<GenerationEvent> {
    const abort = new AbortController();
    const onAbort = (): void => abort.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    const stream = new EventStream<GenerationEvent>(() => abort.abort());
    const sequence = this.takeSequence(prompt);
    if (!sequence) {
      stream.fail(new InternalError("no free sequence: more requests than slots reached the model"));
      return stream;
    }
    const start = process.hrtime.bigint();
    let firstToken: bigint | undefined;
    const generated: Token[] = [];
    const meterBefore = { input: sequence.tokenMeter.usedInputTokens, output: sequence.tokenMeter.usedOutputTokens };
    const hooks: Hooks = {
      signal: abort.signal,
      stopOnAbortSignal: true,
      onToken: (tokens) => {
        firstToken ??= process.hrtime.bigint();
        generated.push(...tokens);
      },
      onTextChunk: (text) => {
        if (text !== "") stream.push({ type: "text", text });
      },
    };
    run(sequence, hooks)
      .then((result) => {
        if (result.stopReason !== "maxTokens" && result.stopReason !== "abort" && result.constrained) validateStructuredOutput(format, result.text);
        for (const call of result.calls) stream.push({ type: "tool_call", call });
        const end = process.hrtime.bigint();
        const split = firstToken ?? end;
        const reason: FinishReason = result.stopReason === "maxTokens" ? "length" : "stop";
        // The meter counts the prompt's last token (the one that yields the first logits) as output, and never
        // evaluates the last generated token, so at the token limit its output count is the number generated,
        // where onToken reports fewer when it held tokens back (an incomplete UTF-8 character). Ended by the model,
        // the meter also counts the end token, which onToken leaves out; the count includes it, as Ollama's
        // eval_count and llama-server's do.
        const input = sequence.tokenMeter.usedInputTokens - meterBefore.input;
        const output = sequence.tokenMeter.usedOutputTokens - meterBefore.output;
        const shown = result.stopReason === "maxTokens" && generated.length > 0 ? Math.max(output, generated.length) : generated.length;
        const completionTokens = shown + (result.stopReason === "eogToken" ? 1 : 0);
        stream.push({
          type: "done",
          reason,
          usage: {
            promptTokens: Math.max(0, input + output - Math.max(0, shown - 1)),
            completionTokens,
            promptDurationNs: Number(split - start),
            evalDurationNs: Number(end - split),
          },
          ...(result.wantContext && result.promptTokens && { context: [...result.promptTokens, ...generated] }),
        });
        stream.end();
      })
      .catch((error: unknown) => stream.fail(signal.aborted ? new RequestCancelledError() : fromLlamaError(error, "generate")))
      .finally(() => {
        signal.removeEventListener("abort", onAbort);
        this.freeSequences.push(sequence);
      });
    return stream;
  }
}

interface Hooks {
  signal: AbortSignal;
  stopOnAbortSignal: true;
  onToken: (tokens: Token[]) => void;
  onTextChunk: (text: string) => void;
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

function commonPrefixLength(a: readonly Token[], b: readonly Token[]): number {
  const limit = Math.min(a.length, b.length);
  let i = 0;
  while (i < limit && a[i] === b[i]) i++;
  return i;
}

function asObject(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** L2-normalises a vector, after keeping only its first `dimensions` values when asked. */
function normalise(vector: number[], dimensions?: number): number[] {
  const kept = dimensions !== undefined && dimensions > 0 ? vector.slice(0, dimensions) : vector;
  const norm = Math.sqrt(kept.reduce((sum, v) => sum + v * v, 0));
  return norm > 0 ? kept.map((v) => v / norm) : kept;
}
