import { z } from "zod";
import { auditQuerySchema } from "../admin/audit.js";
import { keyIdSchema, newKeySchema } from "../admin/keys.js";
import { countTokensSchema, messagesSchema } from "../anthropic/schemas.js";
import { optionsSchema } from "../../inference/model-options.js";
import { paramsSchema as blobParamsSchema } from "../ollama/blobs.js";
import {
  chatSchema,
  copySchema,
  createSchema,
  deleteSchema,
  detokenizeSchema,
  embeddingsSchema as ollamaEmbeddingsSchema,
  embedSchema,
  generateSchema,
  jobIdSchema,
  jobListSchema,
  jobSchema,
  pullSchema,
  showSchema,
  tokenizeSchema,
} from "../ollama/schemas.js";
import { embeddingsSchema as openaiEmbeddingsSchema } from "../openai/embeddings.js";
import { rerankSchema } from "../openai/rerank.js";
import { functionTool, ITEM_SCHEMAS, responsesSchema } from "../openai/responses-schema.js";
import { chatCompletionSchema, completionSchema } from "../openai/schemas.js";
import { componentSchemas, standaloneSchema, type JsonSchema } from "./json-schema.js";

/**
 * What the document describes, by the schemas the handlers validate with (imported, never copied): request bodies
 * as components, path and query parameters, and the three error shapes. Only the error shapes are written here:
 * they are built by src/server/error-handler.ts, not validated, and test/http/openapi.test.ts checks real error
 * bodies against them.
 */

/** Ollama's (and this server's own routes') error: `{"error": "…"}`. */
const ollamaError = z.object({ error: z.string() });

/** OpenAI's error object; `code` is the stable code of docs/errors.md, `param` the field a 400 names. */
const openaiError = z.object({
  error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string() }),
});

/** Anthropic's error object; `error.type` follows the status as Anthropic names it. */
const anthropicError = z.object({
  type: z.literal("error"),
  error: z.object({ type: z.string(), message: z.string() }),
});

/** Every component schema by name: request bodies, the Responses API's input items and tool, error shapes. */
export const COMPONENT_SCHEMAS = {
  ModelOptions: optionsSchema,
  OllamaGenerateRequest: generateSchema,
  OllamaChatRequest: chatSchema,
  OllamaEmbedRequest: embedSchema,
  OllamaEmbeddingsRequest: ollamaEmbeddingsSchema,
  OllamaTokenizeRequest: tokenizeSchema,
  OllamaDetokenizeRequest: detokenizeSchema,
  OllamaShowRequest: showSchema,
  OllamaCopyRequest: copySchema,
  OllamaDeleteRequest: deleteSchema,
  OllamaCreateRequest: createSchema,
  OllamaPullRequest: pullSchema,
  JobRequest: jobSchema,
  KeyRequest: newKeySchema,
  OpenAIChatCompletionRequest: chatCompletionSchema,
  OpenAICompletionRequest: completionSchema,
  OpenAIEmbeddingsRequest: openaiEmbeddingsSchema,
  RerankRequest: rerankSchema,
  OpenAIResponsesRequest: responsesSchema,
  ResponsesMessageItem: ITEM_SCHEMAS.message,
  ResponsesFunctionCallItem: ITEM_SCHEMAS.function_call,
  ResponsesFunctionCallOutputItem: ITEM_SCHEMAS.function_call_output,
  ResponsesReasoningItem: ITEM_SCHEMAS.reasoning,
  ResponsesItemReference: ITEM_SCHEMAS.item_reference,
  ResponsesFunctionTool: functionTool,
  AnthropicMessagesRequest: messagesSchema,
  AnthropicCountTokensRequest: countTokensSchema,
  OllamaError: ollamaError,
  OpenAIError: openaiError,
  AnthropicError: anthropicError,
} as const satisfies Record<string, z.ZodType>;

/** The name of a component schema. */
export type ComponentName = keyof typeof COMPONENT_SCHEMAS;

/** The error shape of each protocol, by component. */
export type ErrorShape = "OllamaError" | "OpenAIError" | "AnthropicError";

/** Path parameters checked by a schema (the others are described where the route is). */
export const PATH_PARAMETER_SCHEMAS = { jobId: jobIdSchema, keyId: keyIdSchema, blobDigest: blobParamsSchema } as const;

/** Query parameters checked by a schema. */
export const QUERY_SCHEMAS = { jobList: jobListSchema, audit: auditQuerySchema } as const;

/** The component schemas as JSON Schema, with the Responses API's input items and tools spelled out. */
export function jsonComponentSchemas(): Record<ComponentName, JsonSchema> {
  const schemas = componentSchemas(COMPONENT_SCHEMAS) as Record<ComponentName, JsonSchema>;
  describeResponsesItems(schemas.OpenAIResponsesRequest);
  return schemas;
}

/**
 * POST /v1/responses takes `input` items and `tools` as values of any shape and checks each one apart (so that an unsupported
 * kind is named with its path): the document says which kinds are taken, by their own schemas.
 */
function describeResponsesItems(request: JsonSchema): void {
  const properties = request.properties as Record<string, JsonSchema>;
  const inputList = branches(properties.input).find((branch) => branch.type === "array");
  const toolList = branches(properties.tools).find((branch) => branch.type === "array");
  if (!inputList || !toolList) throw new Error("OpenAIResponsesRequest: input and tools are expected to take arrays");
  const items = ["ResponsesMessageItem", "ResponsesFunctionCallItem", "ResponsesFunctionCallOutputItem", "ResponsesReasoningItem", "ResponsesItemReference"];
  inputList.items = { anyOf: items.map(ref), description: "An input item; a message's `type` may be left out. Each item is checked on its own." };
  toolList.items = { ...ref("ResponsesFunctionTool"), description: 'Only "function" tools are served; other kinds are refused by type.' };
}

function branches(schema: JsonSchema | undefined): JsonSchema[] {
  return schema === undefined ? [] : [schema, ...(((schema.anyOf ?? []) as JsonSchema[]))];
}

/** A `$ref` to a component schema. */
export function ref(name: string): JsonSchema {
  return { $ref: `#/components/schemas/${name}` };
}

/** The parameters of a URL part (path or query) from a zod object schema: one per property. */
export function parametersOf(schema: z.ZodType, where: "path" | "query"): JsonSchema[] {
  const json = standaloneSchema(schema, { nullable: false });
  const required = new Set((json.required as string[] | undefined) ?? []);
  return Object.entries((json.properties ?? {}) as Record<string, JsonSchema>).map(([name, property]) => ({
    name,
    in: where,
    required: where === "path" || required.has(name),
    schema: property,
  }));
}
