import type { ChatRequest, CompletionRequest } from "../domain/chat.js";
import type { EmbedRequest, EmbedResult, RerankRequest, RerankResult, Token, TokenizeRequest } from "../domain/embedding.js";
import type { GenerationEvent } from "../domain/generation.js";
import type { LoadedModel, LoadSpec, MemoryEstimate, ModelStats } from "../engine/engine.js";
import type { RequestDeadline } from "./deadline.js";
import { crashNamed } from "./helpers.js";

/** What a request may do with a model: everything but unloading it. */
export type ModelHandle = Omit<LoadedModel, "unload">;

/** A slot on a loaded model, held for one request. Release it exactly once (or `using` it). */
export interface Lease extends Disposable {
  readonly model: ModelHandle;
  /** Time this request spent waiting for the model to load, in nanoseconds (0 when it was loaded). */
  readonly loadDurationNs: number;
  release(): void;
}

/**
 * The model as one request sees it: every call also stops at the request's deadline, and a call cut short by
 * the timeout (or a shutdown) ends with the deadline's error instead of a normal `done`. A crash's error names the
 * model as the request did.
 */
export class LeasedModel implements ModelHandle {
  constructor(
    private readonly model: LoadedModel,
    private readonly deadline: RequestDeadline,
    /** The model's name, as the request named it. */
    private readonly name: string,
  ) {}

  get spec(): LoadSpec {
    return this.model.spec;
  }

  get memory(): MemoryEstimate {
    return this.model.memory;
  }

  stats(): ModelStats {
    return this.model.stats();
  }

  chat(request: ChatRequest, signal: AbortSignal): AsyncIterable<GenerationEvent> {
    this.deadline.phase = "generating";
    return this.guard(this.model.chat(request, AbortSignal.any([signal, this.deadline.signal])));
  }

  complete(request: CompletionRequest, signal: AbortSignal): AsyncIterable<GenerationEvent> {
    this.deadline.phase = "generating";
    return this.guard(this.model.complete(request, AbortSignal.any([signal, this.deadline.signal])));
  }

  embed(request: EmbedRequest, signal: AbortSignal): Promise<EmbedResult> {
    return this.timed((s) => this.model.embed(request, s), signal);
  }

  rerank(request: RerankRequest, signal: AbortSignal): Promise<RerankResult> {
    return this.timed((s) => this.model.rerank(request, s), signal);
  }

  countTokens(request: ChatRequest, signal: AbortSignal): Promise<number> {
    return this.timed((s) => this.model.countTokens(request, s), signal);
  }

  tokenize(request: TokenizeRequest, signal: AbortSignal): Promise<Token[]> {
    return this.timed((s) => this.model.tokenize(request, s), signal);
  }

  detokenize(tokens: readonly number[], signal: AbortSignal): Promise<string> {
    return this.timed((s) => this.model.detokenize(tokens, s), signal);
  }

  /** One call that is not a stream, stopped at the deadline like a stream. */
  private async timed<T>(work: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
    this.deadline.phase = "generating";
    try {
      const result = await work(AbortSignal.any([signal, this.deadline.signal]));
      if (this.deadline.cutShort) throw this.deadline.error();
      return result;
    } catch (error) {
      throw this.deadline.cutShort ? this.deadline.error() : crashNamed(error, this.name);
    }
  }

  private async *guard(events: AsyncIterable<GenerationEvent>): AsyncGenerator<GenerationEvent> {
    try {
      for await (const event of events) {
        if (event.type === "done" && this.deadline.cutShort) throw this.deadline.error();
        yield event;
      }
    } catch (error) {
      throw this.deadline.cutShort ? this.deadline.error() : crashNamed(error, this.name);
    }
  }
}
