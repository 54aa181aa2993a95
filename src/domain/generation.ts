import type { ToolCall } from "./chat.js";

/** Why generation ended. */
export type FinishReason = "stop" | "length";

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** Time spent reading the prompt, in nanoseconds. */
  promptDurationNs: number;
  /** Time spent generating, in nanoseconds. */
  evalDurationNs: number;
}

/**
 * What an engine yields while it generates. Exactly one `done` event ends every successful stream; an engine
 * that fails throws an AppError instead.
 */
export type GenerationEvent =
  | { type: "text"; text: string }
  | { type: "tool_call"; call: ToolCall }
  | {
      type: "done";
      reason: FinishReason;
      usage: Usage;
      /** Token ids of prompt + response, for Ollama's `context` (completions only). */
      context?: number[];
    };
