import { z } from "zod";
import { InvalidRequestError } from "../../domain/errors.js";
import { optionsSchema, type ModelOptions } from "../../inference/model-options.js";
import { optional } from "../validation.js";

export { parseBody } from "../validation.js";
export { parseOptions } from "../../inference/model-options.js";
/** Ollama's `options`: the model options of every API. */
export type WireOptions = ModelOptions;
import { JOB_STATES } from "../../domain/job.js";
import { upstreamSchema } from "./upstream-schema.js";

/**
 * Wire schemas of every /api/* request body. They are as lenient as Ollama is where real clients differ:
 * unknown fields and unknown or obsolete `options` keys are dropped, `null` means "absent", and `name` is accepted
 * wherever `model` is. A wrong type on a field we use is an InvalidRequestError naming the field.
 */

const stringOrList = z.union([z.string(), z.array(z.string())], { error: "expected a string or an array of strings" });

/** `model`, or its deprecated alias `name`. */
const modelFields = { model: optional(z.string()), name: optional(z.string()) };
const keepAlive = optional(z.union([z.number(), z.string()], { error: "expected a duration string or a number of seconds" }));
const format = optional(z.union([z.string(), z.record(z.string(), z.unknown())], { error: 'expected "json" or a JSON schema object' }));
/** Spellings of on and off that clients send as strings. */
const THINK_WORDS: Record<string, boolean> = { true: true, false: false, none: false, "": false };
/** `think`: a boolean, or how hard to think (`true` is "medium"); "true", "false", "none" and "" read as booleans. */
const think = optional(
  z.preprocess(
    (value) => (typeof value === "string" && Object.hasOwn(THINK_WORDS, value) ? THINK_WORDS[value] : value),
    z.union([z.boolean(), z.enum(["low", "medium", "high", "max"])], { error: 'expected a boolean or "low", "medium", "high", "max"' }),
  ),
);
/** Log-probabilities of the generated tokens, and how many alternatives per step (Ollama's range). */
const logprobFields = {
  logprobs: optional(z.boolean()),
  top_logprobs: optional(z.number({ error: "expected a number" }).int("expected an integer").min(0, "must be between 0 and 20").max(20, "must be between 0 and 20")),
};

export const generateSchema = z.object({
  ...modelFields,
  prompt: optional(z.string()),
  suffix: optional(z.string()),
  system: optional(z.string()),
  template: optional(z.string()),
  context: optional(z.array(z.number().int())),
  stream: optional(z.boolean()),
  raw: optional(z.boolean()),
  format,
  options: optional(optionsSchema),
  keep_alive: keepAlive,
  images: optional(z.array(z.string())),
  think,
  ...logprobFields,
});
export type GenerateBody = z.output<typeof generateSchema>;

export const toolCallSchema = z.object({
  id: optional(z.string()),
  function: z.object({
    index: optional(z.number()),
    name: z.string(),
    /** An object on the native API; a JSON string is accepted too (OpenAI habit). */
    arguments: optional(z.union([z.record(z.string(), z.unknown()), z.string()], { error: "expected an object" })),
  }),
});
export type WireToolCall = z.output<typeof toolCallSchema>;

export const messageSchema = z.object({
  role: z
    .string()
    .transform((role) => role.toLowerCase())
    .pipe(z.enum(["system", "user", "assistant", "tool"])),
  content: optional(z.string()),
  thinking: optional(z.string()),
  images: optional(z.array(z.string())),
  tool_calls: optional(z.array(toolCallSchema)),
  tool_name: optional(z.string()),
  tool_call_id: optional(z.string()),
});
export type WireMessage = z.output<typeof messageSchema>;

/** OpenAI function-tool shape: `{type: "function", function: {name, description, parameters}}`. */
export const toolSchema = z.object({
  type: optional(z.string()),
  function: z.object({
    name: z.string(),
    description: optional(z.string()),
    parameters: optional(z.record(z.string(), z.unknown())),
  }),
});
export type WireTool = z.output<typeof toolSchema>;

export const chatSchema = z.object({
  ...modelFields,
  messages: optional(z.array(messageSchema)),
  tools: optional(z.array(toolSchema)),
  stream: optional(z.boolean()),
  format,
  options: optional(optionsSchema),
  keep_alive: keepAlive,
  think,
  ...logprobFields,
  /** At the context limit: drop the oldest turns (default true) instead of failing. */
  truncate: optional(z.boolean()),
  /** A reply that reaches the context limit: shift the context (default true) instead of stopping. */
  shift: optional(z.boolean()),
});
export type ChatBody = z.output<typeof chatSchema>;

export const embedSchema = z.object({
  ...modelFields,
  input: optional(stringOrList),
  truncate: optional(z.boolean()),
  dimensions: optional(z.number().int().positive()),
  options: optional(optionsSchema),
  keep_alive: keepAlive,
});
export type EmbedBody = z.output<typeof embedSchema>;

export const embeddingsSchema = z.object({
  ...modelFields,
  prompt: optional(z.string()),
  options: optional(optionsSchema),
  keep_alive: keepAlive,
});
export type EmbeddingsBody = z.output<typeof embeddingsSchema>;

/** Our /api/tokenize (Ollama has none): the model's own tokenizer, as llama-server's /tokenize takes it. */
export const tokenizeSchema = z.object({
  ...modelFields,
  content: optional(z.string()),
  /** llama-server's and vLLM's other spelling of `content`. */
  text: optional(z.string()),
  add_special: optional(z.boolean()),
  parse_special: optional(z.boolean()),
  with_pieces: optional(z.boolean()),
  options: optional(optionsSchema),
  keep_alive: keepAlive,
});
export type TokenizeBody = z.output<typeof tokenizeSchema>;

export const detokenizeSchema = z.object({
  ...modelFields,
  tokens: z.array(z.number().int("expected integer token ids").min(0, "expected token ids (0 or more)"), { error: "expected an array of token ids" }),
  options: optional(optionsSchema),
  keep_alive: keepAlive,
});
export type DetokenizeBody = z.output<typeof detokenizeSchema>;

export const showSchema = z.object({ ...modelFields, verbose: optional(z.boolean()) });
export const deleteSchema = z.object(modelFields);
export const copySchema = z.object({ source: z.string(), destination: z.string() });

export const createSchema = z.object({
  ...modelFields,
  from: optional(z.string()),
  /** File name → digest of an uploaded blob. */
  files: optional(z.record(z.string(), z.string())),
  adapters: optional(z.record(z.string(), z.string())),
  template: optional(z.string()),
  system: optional(z.string()),
  license: optional(stringOrList),
  parameters: optional(z.record(z.string(), z.unknown())),
  messages: optional(z.array(z.unknown())),
  quantize: optional(z.string()),
  /** The pre-0.5 API sent a whole Modelfile as text. */
  modelfile: optional(z.string()),
  stream: optional(z.boolean()),
  /** Ours: a model served by remote OpenAI-compatible endpoints instead of weights (upstream-schema.ts). */
  upstream: optional(upstreamSchema),
});
export type CreateBody = z.output<typeof createSchema>;

export const pullSchema = z.object({
  ...modelFields,
  stream: optional(z.boolean()),
  /** Plain HTTP for a registry of its own (Ollama's flag). */
  insecure: optional(z.boolean()),
  /** Ours: whether a repository without GGUF files may be served by a GGUF quantization of it (default true). */
  substitute: optional(z.boolean()),
});
export type PullBody = z.output<typeof pullSchema>;

export const jobSchema = z.object({
  type: z.literal("pull", { error: 'type: expected "pull"' }),
  ...modelFields,
  insecure: optional(z.boolean()),
  substitute: optional(z.boolean()),
});

/** `?state=running,queued` on GET /api/jobs. */
export const jobListSchema = z.object({
  state: optional(
    z
      .string()
      .transform((value) => value.split(",").map((s) => s.trim()).filter(Boolean))
      .pipe(z.array(z.enum(JOB_STATES))),
  ),
});

export const jobIdSchema = z.object({ id: z.string().regex(/^[0-9a-f]{1,64}$/, "not a job id") });

/** The model a request names: `model`, else the deprecated `name`. */
export function requestedModel(body: { model?: string | undefined; name?: string | undefined }): string {
  const model = body.model || body.name;
  if (!model) throw new InvalidRequestError("model is required");
  return model;
}
