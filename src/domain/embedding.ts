/** An input to embed or score: text, or token ids already tokenized by the client. */
export type TextInput = string | readonly number[];

export interface EmbedRequest {
  inputs: TextInput[];
  /** Cut inputs that exceed the context instead of failing. */
  truncate: boolean;
  /** Keep only the first N dimensions (then re-normalise). */
  dimensions?: number;
}

export interface EmbedResult {
  /** One L2-normalised vector per input, in input order. */
  embeddings: number[][];
  promptTokens: number;
}

/** Relevance of documents to a query, by a model with rank pooling (a reranker). */
export interface RerankRequest {
  query: string;
  documents: string[];
}

export interface RerankResult {
  /** One relevance score per document, in input order (higher is more relevant; the model's raw score). */
  scores: number[];
  promptTokens: number;
}

/** One token of a tokenized text. */
export interface Token {
  id: number;
  /** The token's text (a piece of a character shows as U+FFFD). */
  piece: string;
}

export interface TokenizeRequest {
  text: string;
  /** Add the model's start (BOS) and end tokens as it does for a prompt. */
  addSpecial: boolean;
  /** Parse special-token text such as `<|im_start|>` into those tokens (else it is plain text). */
  parseSpecial: boolean;
}
