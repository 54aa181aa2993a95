/** The chat playground's data: conversations as kept in this browser, and /api/chat's stream lines. */

/** A tool call as /api/chat sends it: the function's name and its arguments (an object). */
export interface ToolCall {
  function: { index?: number; name: string; arguments: unknown };
}

/** Tokens generated and the time they took, from a reply's final line. */
export interface ReplyStats {
  /** `eval_count` */
  tokens: number;
  /** `eval_duration` in nanoseconds */
  evalNanoseconds: number;
  /** `prompt_eval_count` */
  promptTokens?: number;
  /** `done_reason`: stop, length, … */
  doneReason?: string;
}

/** One turn of a conversation. */
export interface ChatMessage {
  id: string;
  role: "user" | "assistant" | "tool";
  content: string;
  /** An assistant's reasoning (`message.thinking`), kept apart from its answer. */
  thinking?: string;
  toolCalls?: ToolCall[];
  /** A tool message: the function whose result it holds. */
  toolName?: string;
  /** The model that wrote an assistant reply. */
  model?: string;
  stats?: ReplyStats;
  /** Why the reply failed (an error line in the stream, or the server's refusal). */
  error?: string;
  /** The reply was stopped before it was done. */
  stopped?: boolean;
  /** Still arriving (never true once stored: a reply interrupted by a reload reads as stopped). */
  streaming?: boolean;
}

/** Sampling settings sent as /api/chat `options`; an absent value is the model's or server's default. */
export interface SamplingOptions {
  temperature?: number;
  top_p?: number;
  top_k?: number;
  seed?: number;
  num_predict?: number;
  num_ctx?: number;
}

/** A conversation's settings: system prompt, sampling, thinking, tools. */
export interface ChatSettings {
  system: string;
  options: SamplingOptions;
  /** Sent as `think` when the model has the `thinking` capability. */
  think: boolean;
  /** JSON text of the tools offered to the model (a list, or one tool); empty = none. */
  tools: string;
}

/** A conversation as kept in localStorage: its model, settings and turns. */
export interface Conversation {
  id: string;
  title: string;
  model: string;
  settings: ChatSettings;
  messages: ChatMessage[];
  /** Last change, ms since the epoch (the list is newest first). */
  updated: number;
}

/** One NDJSON line of POST /api/chat's stream. */
export interface ChatChunk {
  model?: string;
  message?: { role?: string; content?: string; thinking?: string; tool_calls?: ToolCall[] };
  done?: boolean;
  done_reason?: string;
  eval_count?: number;
  eval_duration?: number;
  prompt_eval_count?: number;
  error?: string;
}
