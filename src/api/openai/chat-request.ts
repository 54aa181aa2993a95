import type { ChatRequest, Message, OutputFormat, ThinkingRequest, ToolCall, ToolChoice, ToolDefinition } from "../../domain/chat.js";
import { CapabilityError, InvalidRequestError } from "../../domain/errors.js";
import type { Capability, ModelRecord } from "../../domain/model.js";
import { dropUndefined, type ModelOptions } from "../../inference/model-options.js";
import { openaiOptions, openaiSampling } from "./sampling.js";
import type { ChatCompletionBody, WireContentPart, WireEffort, WireMessage, WireResponseFormat, WireTool, WireToolCall, WireToolChoice } from "./schemas.js";
import { parseToolArguments } from "../tool-arguments.js";

/** Pure mapping of a chat completion request (OpenAI wire) onto the domain ChatRequest. */

/** A mapped chat request, and the model options it runs with. */
export interface MappedChat {
  request: ChatRequest;
  /** The model options it runs with (context size and keep-alive come from them too). */
  options: ModelOptions;
}

/**
 * Maps and checks a chat request against the model it names (`model` as the client sent it, for messages):
 * throws CapabilityError when the model cannot do what is asked (chat, tools, images, thinking) and
 * InvalidRequestError naming the field for anything else unusable.
 */
export function toChatRequest(body: ChatCompletionBody, record: ModelRecord, model: string): MappedChat {
  const has = (capability: Capability): boolean => record.metadata.capabilities.includes(capability);
  if (!has("completion")) throw new CapabilityError(model, "chat");
  const tools = toTools(body.tools);
  if (tools && !has("tools")) throw new CapabilityError(model, "tools");
  const thinking = toThinking(body);
  if (thinking?.enabled && !has("thinking")) throw new CapabilityError(model, "thinking");
  if (body.top_logprobs !== undefined && body.logprobs !== true) throw new InvalidRequestError("top_logprobs: requires logprobs: true");

  const options = openaiOptions(record, body, body.max_completion_tokens ?? body.max_tokens);
  const request: ChatRequest = dropUndefined({
    messages: toMessages(body.messages, record.system, { vision: has("vision"), model }),
    tools,
    toolChoice: toToolChoice(body.tool_choice, tools),
    parallelToolCalls: body.parallel_tool_calls,
    format: toOutputFormat(body.response_format),
    sampling: openaiSampling(options, body.logit_bias),
    thinking,
    logprobs: body.logprobs ? { top: body.top_logprobs ?? 0 } : undefined,
  });
  return { request, options };
}

/** `response_format` → the domain's output format (`json_schema` without a schema is any JSON). */
export function toOutputFormat(format: WireResponseFormat): OutputFormat {
  if (format === undefined || format.type === "text") return { type: "text" };
  if (format.type === "json_object") return { type: "json" };
  // Output is always validated against the schema: `strict` or not, a reply that does not match is an error.
  return format.json_schema.schema ? { type: "json_schema", schema: format.json_schema.schema } : { type: "json" };
}

function toTools(tools: WireTool[] | undefined): ToolDefinition[] | undefined {
  if (!tools || tools.length === 0) return undefined;
  return tools.map(({ function: f }) => dropUndefined({ name: f.name, description: f.description, parameters: f.parameters }));
}

function toToolChoice(choice: WireToolChoice, tools: ToolDefinition[] | undefined): ToolChoice | undefined {
  if (choice === undefined) return undefined;
  if (choice === "auto" || choice === "none") return { type: choice };
  if (!tools) throw new InvalidRequestError(`tool_choice: ${JSON.stringify(choice === "required" ? choice : "function")} needs tools`);
  if (choice === "required") return { type: "required" };
  const name = choice.function.name;
  if (!tools.some((tool) => tool.name === name)) throw new InvalidRequestError(`tool_choice.function.name: no tool is named ${JSON.stringify(name)}`);
  return { type: "function", name };
}

/**
 * `reasoning_effort` (or the Responses API's `reasoning.effort`), and llama.cpp's `chat_template_kwargs.
 * enable_thinking`: `none` or `false` turns thinking off, an effort turns it on (`minimal` is our `low`, `xhigh`
 * our `max`). Absent: the model's default.
 */
export function toThinking(body: Pick<ChatCompletionBody, "reasoning_effort" | "reasoning" | "chat_template_kwargs">): ThinkingRequest | undefined {
  const effort = body.reasoning_effort ?? body.reasoning?.effort;
  const enable = body.chat_template_kwargs?.enable_thinking;
  if (effort === "none" || enable === false) return { enabled: false };
  if (effort !== undefined) return { enabled: true, effort: toEffort(effort) };
  return enable === true ? { enabled: true } : undefined;
}

function toEffort(effort: Exclude<WireEffort, "none">): NonNullable<ThinkingRequest["effort"]> {
  if (effort === "minimal") return "low";
  if (effort === "xhigh") return "max";
  return effort;
}

interface MessageContext {
  vision: boolean;
  model: string;
}

/** Domain messages (`developer` is `system`); the model's SYSTEM prompt is prepended when there is no system message. */
export function toMessages(messages: WireMessage[], defaultSystem: string | undefined, context: MessageContext): Message[] {
  const callNames = new Map<string, string>();
  const mapped = messages.map((m, i) => toMessage(m, `messages[${i}]`, callNames, context));
  if (defaultSystem && !mapped.some((m) => m.role === "system")) mapped.unshift({ role: "system", content: defaultSystem });
  return mapped;
}

function toMessage(m: WireMessage, field: string, callNames: Map<string, string>, context: MessageContext): Message {
  if (m.function_call !== undefined) throw new InvalidRequestError(`${field}.function_call: the legacy function-calling fields are not supported: use tool_calls`);
  switch (m.role) {
    case "system":
    case "developer":
      return { role: "system", content: textOf(m.content, field) };
    case "user": {
      const { text, images } = userContent(m.content, field, context);
      return { role: "user", content: text, ...(images.length > 0 && { images }) };
    }
    case "assistant": {
      const toolCalls = m.tool_calls?.map((call, j) => toToolCall(call, `${field}.tool_calls[${j}]`));
      for (const call of toolCalls ?? []) if (call.id !== undefined) callNames.set(call.id, call.name);
      return dropUndefined({
        role: "assistant" as const,
        content: textOf(m.content, field, ["text", "refusal"]),
        toolCalls: toolCalls?.length ? toolCalls : undefined,
        thinking: m.reasoning_content ?? m.reasoning,
      });
    }
    case "tool":
      return dropUndefined({
        role: "tool" as const,
        content: textOf(m.content, field),
        toolCallId: m.tool_call_id,
        toolName: m.tool_call_id !== undefined ? callNames.get(m.tool_call_id) : undefined,
      });
    default:
      return m.role satisfies never;
  }
}

/** The text of a content: a string, or text parts joined by newlines (as llama.cpp joins them). */
function textOf(content: string | WireContentPart[] | undefined, field: string, allowed: readonly string[] = ["text"]): string {
  if (content === undefined || typeof content === "string") return content ?? "";
  return content
    .map((part, j) => {
      if (!allowed.includes(part.type)) throw new InvalidRequestError(`${field}.content[${j}].type: ${JSON.stringify(part.type)} parts are not supported in this message`);
      return part.text ?? part.refusal ?? "";
    })
    .join("\n");
}

/** A user turn's text and images (base64, from `data:` URLs; images need a vision model). */
function userContent(content: string | WireContentPart[] | undefined, field: string, context: MessageContext): { text: string; images: string[] } {
  if (content === undefined || typeof content === "string") return { text: content ?? "", images: [] };
  const texts: string[] = [];
  const images: string[] = [];
  content.forEach((part, j) => {
    const at = `${field}.content[${j}]`;
    if (part.type === "text") texts.push(part.text ?? "");
    else if (part.type === "image_url") images.push(imageData(part.image_url, `${at}.image_url`, context));
    else throw new InvalidRequestError(`${at}.type: ${JSON.stringify(part.type)} content is not supported`);
  });
  return { text: texts.join("\n"), images };
}

function imageData(image: WireContentPart["image_url"], field: string, context: MessageContext): string {
  if (!context.vision) throw new InvalidRequestError(`${field}: "${context.model}" does not support images`);
  const url = typeof image === "string" ? image : image?.url;
  const data = url?.match(/^data:image\/[a-z0-9.+-]+;base64,(.+)$/i)?.[1];
  if (data === undefined) throw new InvalidRequestError(`${field}: expected a data: URL with base64 image data (remote URLs are not fetched)`);
  return data;
}

function toToolCall(call: WireToolCall, field: string): ToolCall {
  const args = parseToolArguments(call.function.arguments, `${field}.function.arguments`);
  return { ...(call.id !== undefined && { id: call.id }), name: call.function.name, arguments: args };
}
