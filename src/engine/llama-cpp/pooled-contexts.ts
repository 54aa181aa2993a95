import type { LlamaEmbeddingContext, LlamaModel, LlamaRankingContext } from "node-llama-cpp";
import type { EmbedRequest, EmbedResult, RerankRequest, RerankResult } from "../../domain/embedding.js";
import { AppError, CapabilityError, ContextOverflowError, InvalidRequestError, ModelLoadError, RequestCancelledError } from "../../domain/errors.js";
import type { LoadSpec } from "../engine.js";
import { normalise } from "../vectors.js";
import { disposeWithTimeout } from "./dispose.js";
import { fromLlamaError } from "./errors.js";
import { Mutex } from "./mutex.js";
import type { Vocabulary } from "./vocabulary.js";

/** llama.cpp's `<arch>.pooling_type` value of a reranker. */
const RANK_POOLING = 4;
/** Architectures whose rank head llama.cpp already turns into a probability (a softmax over its labels). */
const NORMALISED_RANK_ARCHITECTURES = new Set(["qwen3", "qwen3vl"]);

/**
 * A model's pooled contexts: an embedding context and a ranking context, each made on first use with the model's
 * context size and threads, used by one request at a time, and disposed with the model.
 */
export class PooledContexts {
  private embedding?: Promise<LlamaEmbeddingContext>;
  private ranking?: Promise<LlamaRankingContext>;
  private readonly embedLock = new Mutex();
  private readonly rankLock = new Mutex();

  constructor(
    private readonly model: LlamaModel,
    private readonly spec: LoadSpec,
    private readonly vocabulary: Vocabulary,
    /** The model's name for messages. */
    private readonly name: () => string,
  ) {}

  async embed(request: EmbedRequest, signal: AbortSignal): Promise<EmbedResult> {
    if (request.inputs.length === 0) return { embeddings: [], promptTokens: 0 };
    const inputs = request.inputs.map((input, index) =>
      typeof input === "string" ? this.model.tokenize(input) : this.vocabulary.check(input, `input ${index}`),
    );
    this.embedding ??= this.model.createEmbeddingContext({ contextSize: this.spec.contextSize, threads: this.spec.threads });
    const context = await this.embedding.catch((error: unknown) => {
      this.embedding = undefined;
      throw fromLlamaError(error, "load");
    });
    return this.embedLock.run(async () => {
      const embeddings: number[][] = [];
      let promptTokens = 0;
      for (const [index, input] of inputs.entries()) {
        if (signal.aborted) throw new RequestCancelledError();
        let tokens = input;
        // The embedding context adds BOS/EOS and needs the input strictly shorter than the context.
        const limit = this.spec.contextSize - 3;
        if (tokens.length > limit) {
          if (!request.truncate) {
            throw new ContextOverflowError(`input ${index} of ${tokens.length} tokens exceeds the context length of ${this.spec.contextSize}`);
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

  /**
   * Scores each document by node-llama-cpp's ranking context (created on first use): the model's rank head over the
   * query and the document, put together by the model's rerank template or, without one, as llama.cpp does
   * (BOS query EOS SEP document EOS). node-llama-cpp returns sigmoid(score); the raw score is given back (for
   * architectures whose head already ends in a softmax, llama.cpp's score is that probability, returned as is).
   */
  async rerank(request: RerankRequest, signal: AbortSignal): Promise<RerankResult> {
    if (!this.declaresRankPooling()) throw new CapabilityError(this.name(), "reranking (its GGUF header declares no rank pooling)");
    if (request.documents.length === 0) return { scores: [], promptTokens: 0 };
    this.ranking ??= this.model.createRankingContext({ contextSize: this.spec.contextSize, threads: this.spec.threads });
    const context = await this.ranking.catch((error: unknown) => {
      this.ranking = undefined;
      throw rankingRefusal(error);
    });
    const normalised = NORMALISED_RANK_ARCHITECTURES.has(String(this.model.fileInfo.metadata?.general?.architecture));
    return this.rankLock.run(async () => {
      const scores: number[] = [];
      let promptTokens = 0;
      for (const [index, document] of request.documents.entries()) {
        if (signal.aborted) throw new RequestCancelledError();
        const length = context.calculateInputLength(request.query, document);
        if (length >= context.contextSize) {
          throw new ContextOverflowError(`document ${index}: the query and the document take ${length} tokens, more than the context of ${context.contextSize} holds`);
        }
        promptTokens += length;
        const probability = await context.rank(request.query, document).catch((error: unknown) => {
          throw fromLlamaError(error, "generate");
        });
        scores.push(normalised ? probability : logit(probability));
      }
      return { scores, promptTokens };
    });
  }

  async dispose(): Promise<void> {
    const embedding = await this.embedding?.catch(() => undefined);
    if (embedding) await disposeWithTimeout(() => embedding.dispose(), "embedding context");
    const ranking = await this.ranking?.catch(() => undefined);
    if (ranking) await disposeWithTimeout(() => ranking.dispose(), "ranking context");
  }

  /** Whether the GGUF header declares rank pooling (`<architecture>.pooling_type` = rank), as llama.cpp reads it. */
  private declaresRankPooling(): boolean {
    const metadata = this.model.fileInfo.metadata as unknown as Record<string, unknown> | undefined;
    const architecture = String(this.model.fileInfo.metadata?.general?.architecture ?? "");
    const section = metadata?.[architecture];
    return typeof section === "object" && section !== null && (section as { pooling_type?: unknown }).pooling_type === RANK_POOLING;
  }
}

/** node-llama-cpp's refusal to make a ranking context → a clear error; any other failure is a load failure. */
function rankingRefusal(error: unknown): AppError {
  const message = error instanceof Error ? error.message : String(error);
  if (/not supported|template is invalid/i.test(message)) {
    return new InvalidRequestError(`reranking with this model is not supported by the llama-cpp engine (${message}); AI_SERVER_ENGINE=llama-server serves it`, {
      cause: error,
    });
  }
  const mapped = fromLlamaError(error, "load");
  return mapped instanceof ModelLoadError ? new ModelLoadError(`failed to create the ranking context: ${message}`, { cause: error }) : mapped;
}

/** The logit whose sigmoid is `p` (the largest finite number for p = 1, which float64 cannot tell from a logit over ~36). */
function logit(p: number): number {
  if (p >= 1) return Number.MAX_VALUE;
  if (p <= 0) return -Number.MAX_VALUE;
  return Math.log(p) - Math.log1p(-p);
}
