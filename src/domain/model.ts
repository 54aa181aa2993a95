import type { UpstreamConfig } from "./upstream.js";

/** What a model can do; the values are Ollama's `capabilities` strings. */
export type Capability = "completion" | "tools" | "insert" | "embedding" | "vision" | "thinking";

/** Facts read from a model file's header; the store keeps them so listing never re-reads the weights. */
export interface ModelMetadata {
  /** "upstream": a model served by remote endpoints (no file; the rest is what its configuration says). */
  format: "gguf" | "upstream";
  /** `general.architecture`, e.g. "llama". */
  architecture: string;
  /** Total number of weights. */
  parameterCount: number;
  /** Human form of parameterCount, e.g. "134.1M", "7.6B". */
  parameterSize: string;
  /** e.g. "Q8_0", "Q4_K_M", "F16". */
  quantizationLevel: string;
  /** Training context length in tokens (0 when unknown). */
  contextLength: number;
  embeddingLength: number;
  /** Jinja chat template from the file, when it has one. */
  chatTemplate?: string;
  capabilities: Capability[];
  /** Flattened header key/values; long arrays (vocabularies) are left out. */
  modelInfo: Record<string, unknown>;
}

/** A named model in the store. */
export interface ModelRecord {
  /** Display name, normalised: "name:tag", "namespace/name:tag" or "host/namespace/name:tag". */
  name: string;
  /** sha256 hex of the manifest. */
  digest: string;
  /** sha256 hex of the weights blob; for an upstream model, its configuration's key (upstreamDigest), not a blob. */
  modelDigest: string;
  /** A split GGUF's parts (their blob digests, in order; the first is modelDigest). Absent for one-file models. */
  splitDigests?: readonly string[];
  /** Size of the weights in bytes. */
  size: number;
  /** Prompt template override (Ollama's TEMPLATE). */
  template?: string;
  /** Default system prompt (Ollama's SYSTEM). */
  system?: string;
  /** Default options (Ollama's PARAMETER lines), by Ollama option name. */
  parameters: Record<string, unknown>;
  license?: string;
  metadata: ModelMetadata;
  modifiedAt: Date;
  /** Served by these remote endpoints instead of local weights (size 0, no blob). */
  upstream?: UpstreamConfig;
}

/** llama.cpp's LLAMA_POOLING_TYPE_RANK: the model scores a (query, document) pair instead of embedding a text. */
const RANK_POOLING = 4;

/**
 * Whether the model is a reranker: its header declares rank pooling (`<architecture>.pooling_type` = 4; a 64-bit
 * header value reaches modelInfo as a string).
 */
export function isReranker(metadata: ModelMetadata): boolean {
  const pooling = metadata.modelInfo[`${metadata.architecture}.pooling_type`];
  return (typeof pooling === "number" || typeof pooling === "string") && Number(pooling) === RANK_POOLING;
}
