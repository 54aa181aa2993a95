import type { ToolCall } from "./chat.js";

/** Why generation ended. */
export type FinishReason = "stop" | "length";

export interface Usage {
  /** Tokens in the prompt, all of them (those reused from the cache included). */
  promptTokens: number;
  /** Of `promptTokens`, those reused from a cache instead of read again (absent: none, or not known). */
  cachedTokens?: number;
  completionTokens: number;
  /** Of `completionTokens`, those spent thinking (absent: none, or not known). */
  reasoningTokens?: number;
  /** Time spent reading the prompt, in nanoseconds. */
  promptDurationNs: number;
  /** Time spent generating, in nanoseconds. */
  evalDurationNs: number;
}

/** A candidate token at one step, with its log-probability (natural log). */
export interface TokenCandidate {
  token: string;
  logprob: number;
  /** The token's UTF-8 bytes (a token may hold part of a character). */
  bytes: number[];
}

/** One generated token with its log-probability, and the most likely tokens at that step (as many as asked). */
export interface TokenLogprob extends TokenCandidate {
  top: TokenCandidate[];
}

/**
 * What an engine yields while it generates. Exactly one `done` event ends every successful stream; an engine
 * that fails throws an AppError instead.
 */
export type GenerationEvent =
  /** Answer text; with `logprobs` when the request asked for them (one entry per token of this text). */
  | { type: "text"; text: string; logprobs?: TokenLogprob[] }
  /** Reasoning text of a thinking model, before (or between) the answer's text. */
  | { type: "thinking"; text: string }
  | { type: "tool_call"; call: ToolCall }
  | {
      type: "done";
      reason: FinishReason;
      usage: Usage;
      /** Token ids of prompt + response, for Ollama's `context` (completions only). */
      context?: number[];
    };
