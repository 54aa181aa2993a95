import { ContextOverflowError, type AppError } from "../../domain/errors.js";
import type { ModelOptions } from "../../inference/model-options.js";
import type { Outcome } from "../../inference/run-model.js";
import { type WireTokenLogprob } from "./response.js";
import { functionTools } from "./responses-request.js";
import type { ResponsesBody } from "./responses-schema.js";
import { randomId } from "../random-id.js";

/** The Responses API's response object and output items, as this server answers them. */

/** A text part of an assistant message. */
export interface OutputText {
  type: "output_text";
  text: string;
  annotations: [];
  /** One entry per generated token when asked (`top_logprobs` or the `include` value), else empty. */
  logprobs: WireTokenLogprob[];
}

export type ItemStatus = "in_progress" | "completed" | "incomplete";

export interface MessageOutput {
  id: string;
  type: "message";
  status: ItemStatus;
  role: "assistant";
  content: OutputText[];
}

export interface FunctionCallOutput {
  id: string;
  type: "function_call";
  status: ItemStatus;
  call_id: string;
  name: string;
  /** A JSON string. */
  arguments: string;
}

/** The model's reasoning, whole, as the one part of its summary. */
export interface ReasoningOutput {
  id: string;
  type: "reasoning";
  summary: Array<{ type: "summary_text"; text: string }>;
}

export type OutputItem = MessageOutput | FunctionCallOutput | ReasoningOutput;

export interface ResponseUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export type ResponseStatus = "in_progress" | "completed" | "incomplete" | "failed";

/** A response object: its state and output, with the request's settings echoed as OpenAI's SDK types expect. */
export interface ResponseObject {
  id: string;
  object: "response";
  /** Unix seconds. */
  created_at: number;
  status: ResponseStatus;
  background: false;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: "max_output_tokens" } | null;
  instructions: string | null;
  max_output_tokens: number | null;
  model: string;
  output: OutputItem[];
  parallel_tool_calls: boolean;
  previous_response_id: string | null;
  reasoning: { effort: string | null; summary: string | null };
  store: boolean;
  temperature: number | null;
  text: { format: NonNullable<NonNullable<ResponsesBody["text"]>["format"]> };
  tool_choice: NonNullable<ResponsesBody["tool_choice"]>;
  tools: Array<{ type: "function"; name: string; description: string | null; parameters: Record<string, unknown> | null; strict: boolean }>;
  top_logprobs: number | null;
  top_p: number | null;
  truncation: "auto" | "disabled";
  usage: ResponseUsage | null;
  metadata: Record<string, string>;
}

/** A new id with OpenAI's prefix for that kind of object. */
export function newId(prefix: "resp" | "msg" | "fc" | "rs" | "call"): string {
  return `${prefix}_${randomId(24)}`;
}

/**
 * The response as it starts (`in_progress`, no output, no usage): a fresh id, now, and the request's settings
 * (temperature and top_p as they run, OpenAI's defaults included). `stored` says whether it will be kept.
 */
export function responseShell(body: ResponsesBody, options: ModelOptions, stored: boolean): ResponseObject {
  return {
    id: newId("resp"),
    object: "response",
    created_at: Math.floor(Date.now() / 1000),
    status: "in_progress",
    background: false,
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model: body.model,
    output: [],
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
    store: stored,
    temperature: options.temperature ?? null,
    text: { format: body.text?.format ?? { type: "text" } },
    tool_choice: body.tool_choice ?? "auto",
    tools: functionTools(body.tools).map((tool) => ({
      type: "function",
      name: tool.name,
      description: tool.description ?? null,
      parameters: tool.parameters ?? null,
      strict: tool.strict ?? true,
    })),
    top_logprobs: body.top_logprobs ?? null,
    top_p: options.top_p ?? null,
    truncation: body.truncation ?? "disabled",
    usage: null,
    metadata: body.metadata ?? {},
  };
}

/** The Responses API's usage of a generation (all prompt tokens, of which cached; output, of which reasoning). */
export function toResponseUsage(outcome: Outcome | undefined): ResponseUsage {
  const usage = outcome?.usage;
  const input = usage?.promptTokens ?? 0;
  const output = usage?.completionTokens ?? 0;
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: usage?.cachedTokens ?? 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: usage?.reasoningTokens ?? 0 },
    total_tokens: input + output,
  };
}

/**
 * The error of a failed response, with the codes OpenAI's clients act on: `context_length_exceeded` (the prompt does
 * not fit: Codex stops and says so), `rate_limit_exceeded` (a full queue: retry later), `invalid_prompt` (another
 * request error), `server_error`.
 */
export function responseError(error: AppError): { code: string; message: string } {
  return { code: responseErrorCode(error), message: error.message };
}

function responseErrorCode(error: AppError): string {
  if (error instanceof ContextOverflowError) return "context_length_exceeded";
  if (error.status === 429 || error.status === 503) return "rate_limit_exceeded";
  if (error.status < 500) return "invalid_prompt";
  return "server_error";
}
