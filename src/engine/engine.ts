import type { ChatRequest, CompletionRequest } from "../domain/chat.js";
import type { EmbedRequest, EmbedResult, RerankRequest, RerankResult, Token, TokenizeRequest } from "../domain/embedding.js";
import type { EngineCrashedError } from "../domain/errors.js";
import type { GenerationEvent } from "../domain/generation.js";
import type { UpstreamConfig, UpstreamEndpointStatus } from "../domain/upstream.js";

/** The engines a model can be served by (a model's `engine` parameter; AI_SERVER_ENGINE picks the default). */
export const ENGINE_NAMES = ["llama-cpp", "llama-server"] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];
/** The engine of models served by remote OpenAI-compatible endpoints (`upstream` on /api/create), never a parameter. */
export const UPSTREAM_ENGINE = "upstream";

/**
 * An inference engine. The scheduler sees only this interface, so an in-process engine and an out-of-process
 * runner are interchangeable. Engines translate their own failures into AppErrors.
 */
export interface Engine {
  readonly name: string;
  /** Loads a model; the returned handle serves requests until `unload`. Honours `signal` while loading. */
  load(spec: LoadSpec, signal?: AbortSignal): Promise<LoadedModel>;
  /** What loading `spec` would take, estimated from the file's header without loading it. */
  estimateMemory(spec: LoadSpec): Promise<MemoryEstimate>;
  /**
   * Total RAM and VRAM on the machine the engine's models would use (VRAM 0 without a GPU); the scheduler's
   * memory budget starts from it. Absent: RAM from the OS, no VRAM.
   */
  capacity?(): Promise<MemoryEstimate>;
  /** Releases everything the engine holds (call after every model is unloaded). */
  close(): Promise<void>;
}

export interface LoadSpec {
  /** Path of the GGUF file. */
  modelPath: string;
  /** Context window per sequence, in tokens. */
  contextSize: number;
  /** Sequences served at once (parallel slots). */
  slots: number;
  /** CPU threads for this model. */
  threads: number;
  /** Speculative decoding; absent = off. Output is the same with or without it, only faster when guesses hold. */
  speculative?: SpeculativeSpec;
  /** The engine that must serve this model; absent = the server's default. */
  engine?: EngineName | typeof UPSTREAM_ENGINE;
  /** A model served by remote endpoints (engine "upstream"; `modelPath` is then its configuration's key, no file). */
  upstream?: UpstreamSpec;
}

/** What the upstream engine loads: the model's name (for its logs and metrics) and its endpoints. */
export interface UpstreamSpec {
  model: string;
  config: UpstreamConfig;
}

/**
 * How tokens are guessed ahead for the model to verify in one batch: by a smaller draft model sharing the
 * tokenizer, or draftless, by looking the continuation up in the prompt (good for edits and quoting).
 */
export type SpeculativeSpec =
  | { type: "draft"; modelPath: string; /** Most tokens drafted per step (default 8). */ maxTokens?: number }
  | { type: "lookup"; /** Most tokens guessed per step (default 8). */ maxTokens?: number };

/** Counters since load. */
export interface ModelStats {
  /** Speculative tokens the model checked, and how many of them it accepted. */
  speculative: { drafted: number; accepted: number };
  /**
   * Continuous batching (absent when the engine does not batch): decode steps run, how many of them held more
   * than one sequence (requests sharing the step), and the most sequences one step held.
   */
  batching?: { batches: number; multiSequence: number; maxSequences: number };
  /** A model served by upstream endpoints: how each endpoint is doing. */
  upstream?: UpstreamEndpointStatus[];
  /** The KV cache now (absent when the engine cannot tell). */
  kvCache?: KvCacheUsage;
}

/**
 * A model's KV cache, in cells (one token of one sequence each): `size` for every slot together, `used` held by the
 * requests running now. A free slot's cached prefix, kept for its conversation's next turn but given up to the next
 * request that needs the slot, is not counted, as vLLM counts only the blocks running requests hold.
 */
export interface KvCacheUsage {
  used: number;
  size: number;
}

/** Bytes a model and its context need (or take), split by where they live. */
export interface MemoryEstimate {
  ram: number;
  vram: number;
}

/** One of a loaded model's processes died on its own (a crash, the OOM killer, `kill -9`), not by an unload. */
export interface EngineCrash {
  /** What the requests it was serving got: the process, its exit signal or code, its last log lines. */
  error: EngineCrashedError;
  /**
   * The model can serve nothing more (its generation process died): it must be unloaded and loaded again. False for
   * a helper process (embeddings, rerank), which the model starts again on its next use.
   */
  fatal: boolean;
}

export interface LoadedModel {
  readonly spec: LoadSpec;
  /** Bytes the model and its context take in RAM and VRAM. */
  readonly memory: MemoryEstimate;
  /**
   * Answers a conversation. The stream ends with exactly one `done` event; aborting `signal` ends it early
   * (the stream then ends with `done` and whatever was generated, or throws RequestCancelledError before any output).
   * At most `spec.slots` calls (of chat, complete and embed together) may run at once.
   */
  chat(request: ChatRequest, signal: AbortSignal): AsyncIterable<GenerationEvent>;
  /** Continues a prompt (templated as one user turn unless `raw`); same contract as chat. */
  complete(request: CompletionRequest, signal: AbortSignal): AsyncIterable<GenerationEvent>;
  embed(request: EmbedRequest, signal: AbortSignal): Promise<EmbedResult>;
  /**
   * Scores documents against a query. Only for models whose header declares rank pooling (a reranker); any other
   * model fails with CapabilityError.
   */
  rerank(request: RerankRequest, signal: AbortSignal): Promise<RerankResult>;
  /**
   * How many prompt tokens this conversation takes, rendered by the model's template with its tools, exactly as
   * `chat` would read it (Anthropic's count_tokens; context accounting by agents).
   */
  countTokens(request: ChatRequest, signal: AbortSignal): Promise<number>;
  /** The model's tokens for a text (its own tokenizer). */
  tokenize(request: TokenizeRequest, signal: AbortSignal): Promise<Token[]>;
  /** Text of token ids; an id outside the vocabulary fails with InvalidRequestError. */
  detokenize(tokens: readonly number[], signal: AbortSignal): Promise<string>;
  stats(): ModelStats;
  /**
   * Brings what `stats` reports up to date where the engine keeps it in another process (read when the metrics are
   * scraped; bounded in time, it never fails). Absent: `stats` is always current.
   */
  refreshStats?(): Promise<void>;
  /**
   * Calls `listener` as soon as one of the model's processes dies on its own (at once if the generation process
   * already has), never for an unload. Engines without processes of their own have none: a crash in process takes
   * the whole server down.
   */
  onCrash?(listener: (crash: EngineCrash) => void): void;
  /** Frees every byte the model holds. Safe to call twice. */
  unload(): Promise<void>;
}
