import { z } from "zod";
import { InvalidRequestError } from "../../domain/errors.js";
import { optional } from "../validation.js";
import { extraFields } from "../extras.js";

/**
 * Wire schemas of the OpenAI request bodies. Fields a client sends harmlessly (`user`, `store`, `metadata`, …) and
 * fields this server does not know are dropped; fields whose silent loss would change the answer are refused by
 * name (REFUSED_CHAT_FIELDS, REFUSED_COMPLETION_FIELDS). A wrong type or range is an InvalidRequestError naming the
 * field. `null` counts as absent everywhere, as the SDKs send it.
 */

/** Most choices (`n`, times the prompts of a completion) one request may ask for: each is a generation of its own. */
export const MAX_CHOICES = 16;

const range = (min: number, max: number) => z.number({ error: "expected a number" }).min(min, `must be between ${min} and ${max}`).max(max, `must be between ${min} and ${max}`);
const int = () => z.number({ error: "expected an integer" }).int("expected an integer");
const stop = optional(z.union([z.string(), z.array(z.string())], { error: "expected a string or an array of strings" }));

/** Sampling fields both routes share, with OpenAI's ranges. */
const samplingFields = {
  temperature: optional(range(0, 2)),
  top_p: optional(range(0, 1)),
  presence_penalty: optional(range(-2, 2)),
  frequency_penalty: optional(range(-2, 2)),
  seed: optional(int()),
  stop,
  /** Token id (as a string) → bias from -100 (ban) to 100 (all but force). */
  logit_bias: optional(z.record(z.string(), range(-100, 100))),
  n: optional(int().min(1, "must be at least 1").max(MAX_CHOICES, `must be at most ${MAX_CHOICES}`)),
  stream: optional(z.boolean()),
  stream_options: optional(z.object({ include_usage: optional(z.boolean()) })),
  // Sampling fields llama.cpp's server and vLLM take beside OpenAI's (top-level, as their clients send them).
  top_k: optional(int().min(0, "must be 0 or more")),
  min_p: optional(range(0, 1)),
  repeat_penalty: optional(z.number({ error: "expected a number" })),
  repetition_penalty: optional(z.number({ error: "expected a number" })),
  ...extraFields,
};

/** A content part; which types a role may use is checked when mapping, with the part's path in the error. */
const contentPart = z.object({
  type: z.string({ error: "expected a content part type" }),
  text: optional(z.string()),
  /** An assistant's refusal part. */
  refusal: optional(z.string()),
  image_url: optional(z.union([z.string(), z.object({ url: z.string(), detail: optional(z.string()) })], { error: "expected {url}" })),
});
export type WireContentPart = z.output<typeof contentPart>;
const content = optional(z.union([z.string(), z.array(contentPart)], { error: "expected a string or an array of content parts" }));

const toolCall = z.object({
  id: optional(z.string()),
  type: optional(z.literal("function", { error: 'expected "function"' })),
  function: z.object({
    name: z.string(),
    /** A JSON string, as OpenAI sends it; an object is accepted too. */
    arguments: optional(z.union([z.string(), z.record(z.string(), z.unknown())], { error: "expected a JSON string" })),
  }),
});
export type WireToolCall = z.output<typeof toolCall>;

const message = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"], { error: 'expected "system", "developer", "user", "assistant" or "tool"' }),
  content,
  name: optional(z.string()),
  tool_calls: optional(z.array(toolCall)),
  tool_call_id: optional(z.string()),
  /** The reasoning of an earlier assistant turn, as this server (and llama.cpp, DeepSeek) return it. */
  reasoning_content: optional(z.string()),
  reasoning: optional(z.string()),
  /** The legacy single call; refused when set, as ignoring it would drop a turn's meaning. */
  function_call: optional(z.unknown()),
});
export type WireMessage = z.output<typeof message>;

const tool = z.object({
  type: z.literal("function", { error: 'only "function" tools are supported' }),
  function: z.object({
    name: z.string(),
    description: optional(z.string()),
    parameters: optional(z.record(z.string(), z.unknown())),
    /** Calls are always generated under the parameters' grammar, strict or not. */
    strict: optional(z.boolean()),
  }),
});
export type WireTool = z.output<typeof tool>;

const toolChoice = optional(
  z.union(
    [
      z.enum(["auto", "none", "required"]),
      z.object({ type: z.literal("function"), function: z.object({ name: z.string() }) }),
    ],
    { error: 'expected "auto", "none", "required" or {"type": "function", "function": {"name": …}}' },
  ),
);
export type WireToolChoice = z.output<typeof toolChoice>;

const responseFormat = optional(
  z.discriminatedUnion(
    "type",
    [
      z.object({ type: z.literal("text") }),
      z.object({ type: z.literal("json_object") }),
      z.object({
        type: z.literal("json_schema"),
        json_schema: z.object({
          name: optional(z.string()),
          description: optional(z.string()),
          schema: optional(z.record(z.string(), z.unknown())),
          strict: optional(z.boolean()),
        }),
      }),
    ],
    { error: 'expected {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema": {…}}' },
  ),
);
export type WireResponseFormat = z.output<typeof responseFormat>;

/** OpenAI's efforts, and Ollama's `max`. */
const effort = z.enum(["none", "minimal", "low", "medium", "high", "xhigh", "max"], {
  error: 'expected "none", "minimal", "low", "medium", "high", "xhigh" or "max"',
});
export type WireEffort = z.output<typeof effort>;

/** POST /v1/chat/completions. */
export const chatCompletionSchema = z.object({
  model: z.string({ error: "model is required" }).min(1, "model is required"),
  messages: z.array(message, { error: "expected an array of messages" }).min(1, "at least one message is required"),
  tools: optional(z.array(tool)),
  tool_choice: toolChoice,
  parallel_tool_calls: optional(z.boolean()),
  response_format: responseFormat,
  max_tokens: optional(int().min(1, "must be at least 1")),
  max_completion_tokens: optional(int().min(1, "must be at least 1")),
  logprobs: optional(z.boolean()),
  top_logprobs: optional(int().min(0, "must be between 0 and 20").max(20, "must be between 0 and 20")),
  reasoning_effort: optional(effort),
  /** The Responses API's spelling, which some chat clients send too. */
  reasoning: optional(z.object({ effort: optional(effort) })),
  /** llama.cpp's and vLLM's template switches; only `enable_thinking` is honoured. */
  chat_template_kwargs: optional(z.object({ enable_thinking: optional(z.boolean()) }).catchall(z.unknown())),
  modalities: optional(z.array(z.string())),
  ...samplingFields,
});
export type ChatCompletionBody = z.output<typeof chatCompletionSchema>;

const tokenIds = z.array(int().min(0, "expected token ids"));
/** POST /v1/completions (OpenAI's legacy completions). */
export const completionSchema = z.object({
  model: z.string({ error: "model is required" }).min(1, "model is required"),
  prompt: z.union([z.string(), z.array(z.string()).min(1, "at least one prompt is required"), tokenIds, z.array(tokenIds)], {
    error: "expected a string, an array of strings, or token ids",
  }),
  suffix: optional(z.string()),
  max_tokens: optional(int().min(1, "must be at least 1")),
  /** How many alternatives per token (the legacy API's integer form). */
  logprobs: optional(int().min(0, "must be between 0 and 20").max(20, "must be between 0 and 20")),
  echo: optional(z.boolean()),
  best_of: optional(int().min(1, "must be at least 1")),
  /** Not OpenAI's (its completions have none), but vLLM's and llama.cpp's: the same as on chat. */
  response_format: responseFormat,
  ...samplingFields,
});
export type CompletionBody = z.output<typeof completionSchema>;

/** A field refused by name: set (not null) and `refused(value)` → 400 with `why`. */
interface Refusal {
  field: string;
  why: string;
  refused?: (value: unknown) => boolean;
}

const GUIDED: Refusal[] = ["grammar", "json_schema", "guided_json", "guided_regex", "guided_choice", "guided_grammar", "structured_outputs"].map((field) => ({
  field,
  why: "constrained decoding is requested with response_format on this server",
}));

/**
 * Chat fields refused because ignoring them would change the answer. (Accepted and ignored: `user`, `store`,
 * `metadata`, `service_tier`, `prediction`, `safety_identifier`, `prompt_cache_key`, `prompt_cache_retention`,
 * `verbosity`, `stream_options.include_obfuscation`, a message's `name`, a tool's `strict`, and fields this server
 * does not know.)
 */
export const REFUSED_CHAT_FIELDS: readonly Refusal[] = [
  { field: "audio", why: "audio output is not supported" },
  { field: "modalities", why: 'only ["text"] output is supported', refused: (v) => !Array.isArray(v) || v.some((m) => m !== "text") },
  { field: "functions", why: "the legacy function-calling fields are not supported: use tools" },
  { field: "function_call", why: "the legacy function-calling fields are not supported: use tool_choice" },
  { field: "web_search_options", why: "web search is not supported" },
  ...GUIDED,
];

/** Completion fields refused because ignoring them would change the answer. */
export const REFUSED_COMPLETION_FIELDS: readonly Refusal[] = [...GUIDED];

/** Throws InvalidRequestError naming the first refused field the body sets. */
export function refuseFields(body: unknown, refusals: readonly Refusal[]): void {
  if (typeof body !== "object" || body === null) return;
  const fields = body as Record<string, unknown>;
  for (const { field, why, refused } of refusals) {
    const value = fields[field];
    if (value !== undefined && value !== null && (refused?.(value) ?? true)) throw new InvalidRequestError(`${field}: ${why}`);
  }
}
