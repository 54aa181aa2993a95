import { z } from "zod";
import { optional } from "../validation.js";
import { extraFields } from "../extras.js";

/**
 * Wire schemas of Anthropic's Messages API request bodies (`/v1/messages`, `/v1/messages/count_tokens`). Fields this
 * server does not use (`metadata`, `cache_control` on any block, `service_tier`, `container`, `mcp_servers`,
 * `context_management`, …) and fields it does not know are dropped, never a 400: Claude Code and the SDKs send new
 * ones from release to release. A wrong type or range is an InvalidRequestError naming the field; what a block or a
 * tool may hold is checked when mapping, with its path in the error. `null` counts as absent.
 */

const range = (min: number, max: number) => z.number({ error: "expected a number" }).min(min, `must be between ${min} and ${max}`).max(max, `must be between ${min} and ${max}`);
const int = () => z.number({ error: "expected an integer" }).int("expected an integer");

/** An image's source: base64 data (the only kind served), a URL or an uploaded file (refused when mapping). */
const imageSource = z.object({
  type: z.string({ error: "expected a source type" }),
  media_type: optional(z.string()),
  data: optional(z.string()),
  url: optional(z.string()),
});

/** A block inside a `tool_result`'s content: text or an image. */
const resultBlock = z.object({
  type: z.string({ error: "expected a content block type" }),
  text: optional(z.string()),
  source: optional(imageSource),
});
export type WireResultBlock = z.output<typeof resultBlock>;

/** A content block of a message; which fields each `type` needs is checked when mapping. */
const contentBlock = z.object({
  type: z.string({ error: "expected a content block type" }),
  /** text */
  text: optional(z.string()),
  /** image */
  source: optional(imageSource),
  /** tool_use: the call's id, the tool, its arguments (an object) */
  id: optional(z.string()),
  name: optional(z.string()),
  input: optional(z.unknown()),
  /** tool_result: the call it answers, its output, whether the tool failed */
  tool_use_id: optional(z.string()),
  content: optional(z.union([z.string(), z.array(resultBlock)], { error: "expected a string or an array of content blocks" })),
  is_error: optional(z.boolean()),
  /** thinking (its signature is accepted and ignored); redacted_thinking's `data` is opaque and ignored */
  thinking: optional(z.string()),
});
export type WireContentBlock = z.output<typeof contentBlock>;

const message = z.object({
  /** `system` is not Anthropic's, but clients send system turns mid-conversation (reminders). */
  role: z.enum(["user", "assistant", "system"], { error: 'expected "user", "assistant" or "system"' }),
  content: z.union([z.string(), z.array(contentBlock)], { error: "expected a string or an array of content blocks" }),
});
export type WireMessage = z.output<typeof message>;

const systemBlock = z.object({ type: z.string({ error: "expected a content block type" }), text: optional(z.string()) });
export type WireSystemBlock = z.output<typeof systemBlock>;

/**
 * A tool: a custom one (`name`, `description`, `input_schema`; `type` absent or "custom"), or one of Anthropic's
 * server tools (`web_search_…`, `bash_…`, `text_editor_…`, …), refused when mapping.
 */
const tool = z.object({
  type: optional(z.string()),
  name: z.string({ error: "expected the tool's name" }),
  description: optional(z.string()),
  input_schema: optional(z.record(z.string(), z.unknown(), { error: "expected a JSON schema object" })),
});
export type WireTool = z.output<typeof tool>;

const disableParallel = { disable_parallel_tool_use: optional(z.boolean()) };
const toolChoice = optional(
  z.discriminatedUnion(
    "type",
    [
      z.object({ type: z.literal("auto"), ...disableParallel }),
      z.object({ type: z.literal("any"), ...disableParallel }),
      z.object({ type: z.literal("tool"), name: z.string({ error: "expected the tool's name" }), ...disableParallel }),
      z.object({ type: z.literal("none") }),
    ],
    { error: 'expected {"type": "auto"}, {"type": "any"}, {"type": "tool", "name": …} or {"type": "none"}' },
  ),
);
export type WireToolChoice = z.output<typeof toolChoice>;

const thinking = optional(
  z.discriminatedUnion(
    "type",
    [
      z.object({ type: z.literal("enabled"), budget_tokens: optional(int().min(1, "must be at least 1")) }),
      z.object({ type: z.literal("disabled") }),
      z.object({ type: z.literal("adaptive") }),
    ],
    { error: 'expected {"type": "enabled", "budget_tokens": …}, {"type": "disabled"} or {"type": "adaptive"}' },
  ),
);
export type WireThinking = z.output<typeof thinking>;

const effort = z.enum(["low", "medium", "high", "xhigh", "max"], { error: 'expected "low", "medium", "high", "xhigh" or "max"' });
export type WireEffort = z.output<typeof effort>;

/** Anthropic's `output_config`: the effort (of thinking, here) and structured output. */
const outputConfig = optional(
  z.object({
    effort: optional(effort),
    format: optional(
      z.object({
        type: z.literal("json_schema", { error: 'expected "json_schema"' }),
        schema: z.record(z.string(), z.unknown(), { error: "expected a JSON schema object" }),
      }),
    ),
  }),
);

/** What both routes read: the conversation, its tools and thinking, the model and how it is loaded. */
const conversation = {
  model: z.string({ error: "model is required" }).min(1, "model is required"),
  messages: z.array(message, { error: "expected an array of messages" }).min(1, "at least one message is required"),
  system: optional(z.union([z.string(), z.array(systemBlock)], { error: "expected a string or an array of text blocks" })),
  tools: optional(z.array(tool, { error: "expected an array of tools" })),
  tool_choice: toolChoice,
  thinking,
  output_config: outputConfig,
  ...extraFields,
};

/** POST /v1/messages/count_tokens. */
export const countTokensSchema = z.object(conversation);
export type CountTokensBody = z.output<typeof countTokensSchema>;

/** POST /v1/messages. `max_tokens` is required, as on Anthropic's API. */
export const messagesSchema = z.object({
  ...conversation,
  max_tokens: z
    .number({ error: (issue) => (issue.input === undefined ? "required (as on Anthropic's API)" : "expected an integer") })
    .int("expected an integer")
    .min(1, "must be at least 1"),
  stop_sequences: optional(z.array(z.string(), { error: "expected an array of strings" })),
  temperature: optional(range(0, 1)),
  top_p: optional(range(0, 1)),
  top_k: optional(int().min(0, "must be 0 or more")),
  stream: optional(z.boolean()),
});
export type MessagesBody = z.output<typeof messagesSchema>;
