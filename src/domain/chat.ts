/** The shared vocabulary of a generation request; both protocol adapters map their wire format onto these. */

export interface ToolCall {
  /** Call id, when the protocol has one (OpenAI). */
  id?: string;
  name: string;
  /** Always a parsed JSON object (Ollama sends objects, OpenAI strings: adapters convert). */
  arguments: Record<string, unknown>;
}

export type Message =
  | { role: "system"; content: string }
  | { role: "user"; content: string; images?: string[] }
  | { role: "assistant"; content: string; toolCalls?: ToolCall[]; thinking?: string }
  | { role: "tool"; content: string; toolName?: string; toolCallId?: string };

export type Role = Message["role"];

export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON schema of the arguments object. */
  parameters?: Record<string, unknown>;
}

/** How the output must be shaped. */
export type OutputFormat = { type: "text" } | { type: "json" } | { type: "json_schema"; schema: Record<string, unknown> };

/** Sampling settings; an absent field means "engine default". */
export interface SamplingOptions {
  /** 0 = greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  /** Fixed seed for reproducible sampling; absent = random. */
  seed?: number;
  /** Maximum tokens to generate; absent or negative = until the context is full. */
  maxTokens?: number;
  /** Generation stops before any of these strings; they are not part of the output. */
  stop?: string[];
  repeatPenalty?: number;
  /** How many recent tokens the penalties look at. */
  repeatLastN?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Added to the logits of these token ids before sampling (-100 bans a token, 100 all but forces it). */
  logitBias?: ReadonlyArray<readonly [tokenId: number, bias: number]>;
}

/**
 * Which tools the model may or must call: `auto` (its choice; the default), `none` (answer in text, tools only
 * described), `required` (at least one call), or `function` (a call of exactly this tool).
 */
export type ToolChoice = { type: "auto" } | { type: "none" } | { type: "required" } | { type: "function"; name: string };

/** How hard a thinking model reasons before it answers. */
export type ThinkingEffort = "low" | "medium" | "high" | "max";

/**
 * Reasoning before the answer, for models whose template thinks. Absent: the model's default. The reasoning is
 * always reported apart from the answer (`thinking` events), never mixed into the text.
 */
export interface ThinkingRequest {
  /** false turns thinking off where the template allows it. */
  enabled: boolean;
  effort?: ThinkingEffort;
  /** At most this many tokens of reasoning (Anthropic's `budget_tokens`); the answer follows when it is spent. */
  budgetTokens?: number;
}

/** Log-probabilities of each generated token, and of the `top` most likely tokens at each step (0–20). */
export interface LogprobsRequest {
  top: number;
}

/** Settings that change how the model is loaded (a different value means another loaded instance). */
export interface LoadOptions {
  /** Context window in tokens. */
  contextSize?: number;
}

export interface ChatRequest {
  messages: Message[];
  tools?: ToolDefinition[];
  /** Absent = auto. */
  toolChoice?: ToolChoice;
  /** May one reply hold several calls? Absent = the model's default. */
  parallelToolCalls?: boolean;
  format: OutputFormat;
  sampling: SamplingOptions;
  thinking?: ThinkingRequest;
  /** Absent = no log-probabilities. */
  logprobs?: LogprobsRequest;
  /** A conversation longer than the context: drop its oldest turns (after the system prompt) to fit. Default true; false fails with ContextOverflowError. */
  truncate?: boolean;
  /** A reply that reaches the context limit: keep generating by discarding the oldest context (default true), or stop there with `length`. */
  shift?: boolean;
  /** The conversation this request continues (an opaque id): engines serve it on the slot whose cache holds its prefix. */
  session?: string;
}

/** A plain completion: the prompt is either templated by the engine (as one user turn) or used as is (`raw`). */
export interface CompletionRequest {
  prompt: string;
  /** Text after the insertion point (fill-in-the-middle); needs the `insert` capability. */
  suffix?: string;
  /** Skip the chat template. */
  raw: boolean;
  /** System prompt (templated mode only). */
  system?: string;
  /** Token ids returned by an earlier completion, prepended to this prompt (templated mode only). */
  context?: number[];
  /** Prompt template override with {{ .System }} / {{ .Prompt }} placeholders (templated mode only). */
  template?: string;
  format: OutputFormat;
  sampling: SamplingOptions;
  /** Templated mode only. */
  thinking?: ThinkingRequest;
  logprobs?: LogprobsRequest;
  /** As ChatRequest's. */
  session?: string;
}
