import { z } from "zod";
import { InvalidRequestError } from "../../domain/errors.js";
import { describeIssues, optional } from "../validation.js";
import { extraFields } from "../extras.js";

/**
 * Wire schemas of POST /v1/responses (OpenAI's Responses API). Top-level fields are checked here; input items and
 * tools are checked one by one (`parseInputItem`, `parseTool`) so that an unsupported kind is named with its path
 * (`input[2].type`, `tools[0].type`). `null` counts as absent, unknown fields are dropped.
 */

const range = (min: number, max: number) => z.number({ error: "expected a number" }).min(min, `must be between ${min} and ${max}`).max(max, `must be between ${min} and ${max}`);
const int = () => z.number({ error: "expected an integer" }).int("expected an integer");

/** OpenAI's efforts (and `xhigh`, Ollama's `max`): `none` turns thinking off. */
const effort = z.enum(["none", "minimal", "low", "medium", "high", "xhigh", "max"], {
  error: 'expected "none", "minimal", "low", "medium", "high", "xhigh" or "max"',
});

const textFormat = z.discriminatedUnion(
  "type",
  [
    z.object({ type: z.literal("text") }),
    z.object({ type: z.literal("json_object") }),
    z.object({
      type: z.literal("json_schema"),
      name: optional(z.string()),
      description: optional(z.string()),
      schema: optional(z.record(z.string(), z.unknown())),
      /** The output is validated against the schema whether or not `strict` is set. */
      strict: optional(z.boolean()),
    }),
  ],
  { error: 'expected {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "name", "schema"}' },
);
export type WireTextFormat = z.output<typeof textFormat>;

const toolChoice = z.union(
  [
    z.enum(["auto", "none", "required"]),
    // Any object; only {"type": "function", "name"} is honoured, the others are refused by type when mapping.
    z.object({ type: z.string(), name: optional(z.string()) }),
  ],
  { error: 'expected "auto", "none", "required" or {"type": "function", "name": …}' },
);
export type WireResponsesToolChoice = z.output<typeof toolChoice>;

/** POST /v1/responses. */
export const responsesSchema = z.object({
  model: z.string({ error: "model is required" }).min(1, "model is required"),
  /** A user message, or a list of input items (each checked by `parseInputItem`). */
  input: optional(z.union([z.string(), z.array(z.unknown())], { error: "expected a string or an array of input items" })),
  instructions: optional(z.string({ error: "expected a string" })),
  previous_response_id: optional(z.string({ error: "expected a response id" }).min(1, "expected a response id")),
  /** Each checked by `parseTool`. */
  tools: optional(z.array(z.unknown(), { error: "expected an array of tools" })),
  tool_choice: optional(toolChoice),
  parallel_tool_calls: optional(z.boolean()),
  text: optional(z.object({ format: optional(textFormat), verbosity: optional(z.string()) })),
  max_output_tokens: optional(int().min(1, "must be at least 1")),
  temperature: optional(range(0, 2)),
  top_p: optional(range(0, 1)),
  top_logprobs: optional(int().min(0, "must be between 0 and 20").max(20, "must be between 0 and 20")),
  reasoning: optional(z.object({ effort: optional(effort), summary: optional(z.string()), generate_summary: optional(z.string()) })),
  /** `auto` drops the oldest turns of a conversation longer than the context; `disabled` (the default) fails. */
  truncation: optional(z.enum(["auto", "disabled"], { error: 'expected "auto" or "disabled"' })),
  store: optional(z.boolean()),
  stream: optional(z.boolean()),
  /** Only "message.output_text.logprobs" changes the answer (log-probabilities on the text); others are ignored. */
  include: optional(z.array(z.string())),
  metadata: optional(z.record(z.string(), z.string())),
  user: optional(z.string()),
  ...extraFields,
});
export type ResponsesBody = z.output<typeof responsesSchema>;

/**
 * Fields refused because ignoring them would change the answer (accepted and ignored: `user`, `metadata`,
 * `prompt_cache_key`, `prompt_cache_retention`, `safety_identifier`, `service_tier`, `include` other than the
 * logprobs, `stream_options`, `max_tool_calls` (no built-in tools run here), `text.verbosity`,
 * `reasoning.summary`, and fields this server does not know).
 */
export const REFUSED_RESPONSES_FIELDS: ReadonlyArray<{ field: string; why: string; refused?: (value: unknown) => boolean }> = [
  { field: "background", why: "background responses are not supported: run it in the foreground (stream: true to see it progress)", refused: (v) => v !== false },
  { field: "conversation", why: "conversations are not supported: chain responses with previous_response_id" },
  { field: "prompt", why: "stored prompt templates are not supported: send instructions and input" },
];

// --- input items -------------------------------------------------------------------------------------------------

/**
 * A content part: `input_text`, `output_text` (an assistant's), `refusal`, `input_image` (`image_url`), or another
 * type; which types a role may use is checked when mapping, with the part's path.
 */
const contentPart = z.object({
  type: z.string({ error: "expected a content part type" }),
  text: optional(z.string()),
  refusal: optional(z.string()),
  image_url: optional(z.string()),
  file_id: optional(z.string()),
});
export type WireInputPart = z.output<typeof contentPart>;
const content = z.union([z.string(), z.array(contentPart)], { error: "expected a string or an array of content parts" });

const messageItem = z.object({
  type: z.literal("message").default("message"),
  role: z.enum(["user", "system", "developer", "assistant"], { error: 'expected "user", "system", "developer" or "assistant"' }),
  content,
  id: optional(z.string()),
});
const functionCallItem = z.object({
  type: z.literal("function_call"),
  call_id: z.string({ error: "expected the call's id" }),
  name: z.string({ error: "expected the function's name" }),
  /** A JSON string as OpenAI sends it; an object is accepted too. */
  arguments: z
    .union([z.string(), z.record(z.string(), z.unknown())], { error: "expected a JSON string" })
    .transform((args) => (typeof args === "string" ? args : JSON.stringify(args))),
  id: optional(z.string()),
});
const functionCallOutputItem = z.object({
  type: z.literal("function_call_output"),
  call_id: z.string({ error: "expected the call's id" }),
  output: content,
  id: optional(z.string()),
});
const reasoningItem = z.object({
  type: z.literal("reasoning"),
  id: optional(z.string()),
  summary: optional(z.array(z.object({ type: z.string(), text: z.string() }))).transform((summary) => summary ?? []),
  content: optional(z.array(z.object({ type: z.string(), text: z.string() }))),
  /** Another server's encrypted reasoning cannot be read here; it is dropped. */
  encrypted_content: optional(z.string()),
});
const itemReference = z.object({ type: z.literal("item_reference"), id: z.string({ error: "expected an item id" }) });

/** Each input item kind this server takes, by `type` (parseInputItem picks one; the OpenAPI document lists them). */
export const ITEM_SCHEMAS = {
  message: messageItem,
  function_call: functionCallItem,
  function_call_output: functionCallOutputItem,
  reasoning: reasoningItem,
  item_reference: itemReference,
} as const;

export type MessageItem = z.output<typeof messageItem>;
export type FunctionCallItem = z.output<typeof functionCallItem>;
export type FunctionCallOutputItem = z.output<typeof functionCallOutputItem>;
export type ReasoningItem = z.output<typeof reasoningItem>;
export type ItemReference = z.output<typeof itemReference>;
/** An input item as checked (and as stored in a response's conversation, references resolved). */
export type InputItem = MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem | ItemReference;
/** An input item whose references are resolved: what a conversation is made of. */
export type ConversationItem = Exclude<InputItem, ItemReference>;

/**
 * Checks one input item (`path` is where it is, e.g. ["input", 2]); a kind this server cannot take (built-in tool
 * calls, custom tools, …) is an InvalidRequestError naming its type. The result drops the fields that do not matter.
 */
export function parseInputItem(raw: unknown, path: PropertyKey[]): InputItem {
  const at = pathText(path);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new InvalidRequestError(`${at}: expected an input item object`);
  const fields = raw as Record<string, unknown>;
  const type = fields.type ?? (fields.role !== undefined ? "message" : undefined);
  if (typeof type !== "string") throw new InvalidRequestError(`${at}.type: expected an input item type`);
  const schema = (ITEM_SCHEMAS as Record<string, z.ZodType<InputItem>>)[type];
  if (!schema) {
    const supported = "only message, function_call, function_call_output, reasoning and item_reference";
    throw new InvalidRequestError(`${at}.type: ${JSON.stringify(type)} items are not supported (${supported})`);
  }
  const result = schema.safeParse(raw);
  if (!result.success) throw new InvalidRequestError(describeIssues(result.error.issues, path));
  return result.data;
}

// --- tools -------------------------------------------------------------------------------------------------------

/** A `function` tool, the only kind served (parseTool checks each tool with it). */
export const functionTool = z.object({
  type: z.literal("function"),
  name: z.string({ error: "expected the function's name" }).min(1, "expected the function's name"),
  description: optional(z.string()),
  parameters: optional(z.record(z.string(), z.unknown())),
  /** Calls are always generated under the parameters' grammar, strict or not. */
  strict: optional(z.boolean()),
});
export type WireFunctionTool = z.output<typeof functionTool>;

/** Checks one tool (`path` e.g. ["tools", 0]); any kind but `function` is an InvalidRequestError naming its type. */
export function parseTool(raw: unknown, path: PropertyKey[]): WireFunctionTool {
  const type = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>).type : undefined;
  if (type !== undefined && type !== "function") {
    const at = `${pathText(path)}.type`;
    throw new InvalidRequestError(`${at}: ${JSON.stringify(type)} tools are not supported (only "function" tools: the server runs no built-in tool)`);
  }
  const result = functionTool.safeParse(raw);
  if (!result.success) throw new InvalidRequestError(describeIssues(result.error.issues, path));
  return result.data;
}

/** ["input", 2] → "input[2]", as the validation errors name fields. */
export function pathText(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === "number" ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), "");
}
