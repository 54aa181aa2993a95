import type { ChatRequest, CompletionRequest, LogprobsRequest, Message, OutputFormat, SamplingOptions, ThinkingRequest } from "../../domain/chat.js";
import { toOaiMessages, toToolsBody } from "../llama-server/request-body.js";

/**
 * Domain requests → the OpenAI Chat Completions and Completions request JSON an upstream endpoint takes, for the
 * endpoint's own model name. Only what the request sets is sent (an unset option is the remote engine's default, not
 * Ollama's), always streamed with usage in a last chunk. Beside OpenAI's fields, those vLLM and llama.cpp's server
 * both read are sent when set (`top_k`, `min_p`, the repetition penalty under both their names, `chat_template_kwargs`
 * for thinking). Messages, tools and tool choice take the shape llama-server's engine sends (a named function: that
 * tool alone with `required`, which every OpenAI-compatible server honours).
 */

/** Both requests end with this: streamed, the usage in a last chunk. */
const STREAMED = { stream: true, stream_options: { include_usage: true } } as const;

export function chatBody(request: ChatRequest, model: string): Record<string, unknown> {
  return {
    model,
    messages: upstreamMessages(request.messages),
    ...toToolsBody(request.tools ?? [], request.toolChoice, request.parallelToolCalls),
    ...samplingBody(request.sampling),
    ...responseFormat(request.format),
    ...thinkingBody(request.thinking),
    ...(request.logprobs !== undefined && { logprobs: true, top_logprobs: logprobsCount(request.logprobs) }),
    ...STREAMED,
  };
}

/** A raw prompt (or one rendered by the request's own template) for /completions, with a suffix to fill in before. */
export function completionBody(request: CompletionRequest, prompt: string, model: string): Record<string, unknown> {
  return {
    model,
    prompt,
    ...(request.suffix !== undefined && request.suffix !== "" && { suffix: request.suffix }),
    ...samplingBody(request.sampling),
    ...responseFormat(request.format),
    ...(request.logprobs !== undefined && { logprobs: logprobsCount(request.logprobs) }),
    ...STREAMED,
  };
}

/** A templated completion is a one-turn chat (after the system prompt): the remote server applies the model's template. */
export function completionAsChat(request: CompletionRequest): ChatRequest {
  const messages: Message[] = [...(request.system !== undefined ? [{ role: "system" as const, content: request.system }] : []), { role: "user", content: request.prompt }];
  return {
    messages,
    format: request.format,
    sampling: request.sampling,
    ...(request.thinking !== undefined && { thinking: request.thinking }),
    ...(request.logprobs !== undefined && { logprobs: request.logprobs }),
  };
}

/** Domain messages → OpenAI messages; a user turn's images become `image_url` parts with data: URLs. */
export function upstreamMessages(messages: readonly Message[]): unknown[] {
  const mapped = toOaiMessages(messages);
  return mapped.map((message, i) => {
    const source = messages[i];
    if (source?.role !== "user" || !source.images?.length) return message;
    const images = source.images.map((data) => ({ type: "image_url", image_url: { url: `data:${imageType(data)};base64,${data}` } }));
    return { role: "user", content: [{ type: "text", text: source.content }, ...images] };
  });
}

/** The media type of base64 image data, from its first bytes (PNG, JPEG, GIF, WebP; else JPEG, as most are). */
function imageType(base64: string): string {
  if (base64.startsWith("iVBORw0KGgo")) return "image/png";
  if (base64.startsWith("R0lGOD")) return "image/gif";
  if (base64.startsWith("UklGR")) return "image/webp";
  return "image/jpeg";
}

export function samplingBody(sampling: SamplingOptions): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const set = (key: string, value: unknown, sent = value !== undefined): void => {
    if (sent) body[key] = value;
  };
  const stop = (sampling.stop ?? []).filter((s) => s !== "");
  set("temperature", sampling.temperature);
  set("top_p", sampling.topP);
  set("top_k", sampling.topK);
  set("min_p", sampling.minP);
  set("seed", sampling.seed, sampling.seed !== undefined && sampling.seed >= 0);
  set("max_tokens", sampling.maxTokens, sampling.maxTokens !== undefined && sampling.maxTokens >= 0);
  set("stop", stop, stop.length > 0);
  set("presence_penalty", sampling.presencePenalty);
  set("frequency_penalty", sampling.frequencyPenalty);
  // llama.cpp's name, and vLLM's.
  set("repeat_penalty", sampling.repeatPenalty);
  set("repetition_penalty", sampling.repeatPenalty);
  set("repeat_last_n", sampling.repeatLastN, sampling.repeatLastN !== undefined && sampling.repeatLastN > 0);
  const bias = sampling.logitBias ?? [];
  set("logit_bias", Object.fromEntries(bias.map(([id, value]) => [String(id), value])), bias.length > 0);
  return body;
}

/** JSON → `json_object`; a schema → `json_schema` (strict); the output is validated here too when it ends. */
function responseFormat(format: OutputFormat): Record<string, unknown> {
  if (format.type === "json") return { response_format: { type: "json_object" } };
  if (format.type === "json_schema") return { response_format: { type: "json_schema", json_schema: { name: "output", schema: format.schema, strict: true } } };
  return {};
}

/**
 * Thinking off → `chat_template_kwargs.enable_thinking: false` (the switch Qwen-style templates read on vLLM and
 * llama.cpp); on → `true`, with OpenAI's `reasoning_effort` when an effort is asked (`max` is its `high`). A token
 * budget has no portable field and is not sent.
 */
function thinkingBody(thinking: ThinkingRequest | undefined): Record<string, unknown> {
  if (thinking === undefined) return {};
  if (!thinking.enabled) return { chat_template_kwargs: { enable_thinking: false } };
  const effort = thinking.effort === "max" ? "high" : thinking.effort;
  return { chat_template_kwargs: { enable_thinking: true }, ...(effort !== undefined && { reasoning_effort: effort }) };
}

/** Candidates asked per token: at least one, since llama.cpp's server reports none (not even the chosen token's) with zero. */
function logprobsCount(logprobs: LogprobsRequest): number {
  return Math.max(1, Math.floor(logprobs.top));
}
