import { createHash } from "node:crypto";
import type { Capability, ModelMetadata } from "./model.js";

/** llama.cpp's LLAMA_POOLING_TYPE_RANK, as model.ts's isReranker reads it. */
const RANK_POOLING = 4;

/**
 * A model served by remote OpenAI-compatible endpoints (vLLM, TGI, llama.cpp's llama-server, another ai-server)
 * instead of local weights: `POST /api/create` with `upstream`. Requests go to one endpoint at a time, chosen by
 * weight among the healthy ones, and move to another when one fails before answering.
 */
export interface UpstreamConfig {
  endpoints: UpstreamEndpoint[];
  /** What the remote model can do (Ollama's capability names, and "rerank"); the adapters check requests against it. */
  capabilities: UpstreamCapability[];
  /** Requests sent to the endpoints at once (the remote engine batches them); absent: AI_SERVER_UPSTREAM_MAX_PARALLEL. */
  maxParallel?: number;
  /** The remote model's context window in tokens, as /api/show and /api/ps report it (0 or absent: not known). */
  contextLength?: number;
  /** Longest wait for a connection to an endpoint; absent: AI_SERVER_UPSTREAM_CONNECT_TIMEOUT. */
  connectTimeoutMs?: number;
  /** Longest wait for an endpoint's answer to begin (and between two pieces of it); absent: AI_SERVER_UPSTREAM_FIRST_BYTE_TIMEOUT. */
  firstByteTimeoutMs?: number;
}

/** One OpenAI-compatible endpoint serving the model. */
export interface UpstreamEndpoint {
  /** Base URL of its OpenAI routes, without a trailing slash: `{url}/chat/completions` (e.g. http://vllm-1:8000/v1). */
  url: string;
  /** The model's name there (the `model` field of every request sent to it). */
  model: string;
  /**
   * The environment variable holding its bearer key, read each time it is used; the key itself is never stored or
   * shown. Absent: requests carry no Authorization header.
   */
  apiKeyEnv?: string;
  /** Share of the traffic relative to the other endpoints (a positive integer; default 1). */
  weight: number;
}

/** What an upstream model can be said to do: Ollama's capabilities, or scoring documents (a reranker). */
export type UpstreamCapability = Capability | "rerank";

/** Capabilities of an upstream model that names none. */
export const DEFAULT_UPSTREAM_CAPABILITIES: readonly UpstreamCapability[] = ["completion", "tools"];

/** How one endpoint of a loaded upstream model is doing (/api/ps). */
export interface UpstreamEndpointStatus {
  url: string;
  model: string;
  weight: number;
  /** Its last health check or request succeeded, and it is not cooling down. */
  healthy: boolean;
  /** Until when it gets no traffic (unless no other endpoint is left); null when it is not cooling down. */
  coolingUntil: Date | null;
  /** Failures in a row (each one doubles the next cooldown; a success resets them). */
  failures: number;
  /** Why it last failed (never a key). */
  lastError?: string;
  /** Requests it is serving now. */
  inFlight: number;
}

/**
 * The key an upstream model's loaded instance goes by, in place of a weights digest: a hash of its configuration, so
 * that a model re-created with other endpoints is a new instance (the old one finishes its requests, as in a hot
 * swap), and names sharing one configuration share one instance. Not a blob digest (`upstream:` prefix).
 */
export function upstreamDigest(config: UpstreamConfig): string {
  return `upstream:${createHash("sha256").update(JSON.stringify(config)).digest("hex")}`;
}

/**
 * What the store records as an upstream model's metadata: no header to read, so the configuration says it. A
 * reranker gets rank pooling in its model info (`upstream.pooling_type` 4), which is how any model is known as one.
 */
export function upstreamMetadata(config: UpstreamConfig): ModelMetadata {
  return {
    format: "upstream",
    architecture: "upstream",
    parameterCount: 0,
    parameterSize: "",
    quantizationLevel: "",
    contextLength: config.contextLength ?? 0,
    embeddingLength: 0,
    capabilities: config.capabilities.filter((c): c is Capability => c !== "rerank"),
    modelInfo: config.capabilities.includes("rerank") ? { "upstream.pooling_type": RANK_POOLING } : {},
  };
}
