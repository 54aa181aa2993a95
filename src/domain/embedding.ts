export interface EmbedRequest {
  inputs: string[];
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
