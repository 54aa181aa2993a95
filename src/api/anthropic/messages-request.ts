import type { ChatRequest, Message, OutputFormat, ThinkingEffort, ThinkingRequest, ToolCall, ToolChoice, ToolDefinition } from "../../domain/chat.js";
import { CapabilityError, InvalidRequestError } from "../../domain/errors.js";
import type { Capability, ModelRecord } from "../../domain/model.js";
import { dropUndefined, toSampling, type ModelOptions } from "../../inference/model-options.js";
import { parseToolArguments } from "../tool-arguments.js";
import type { CountTokensBody, MessagesBody, WireContentBlock, WireEffort, WireMessage, WireResultBlock, WireSystemBlock, WireTool, WireToolChoice } from "./schemas.js";
import { requestOptions } from "../extras.js";

/** Pure mapping of a Messages API request (Anthropic's wire) onto the domain ChatRequest. */

/** A mapped request, and the model options it runs with (context size and keep-alive come from them too). */
export interface MappedMessages {
  request: ChatRequest;
  options: ModelOptions;
}

/** What a request may carry: count_tokens has the conversation alone, /v1/messages its sampling fields too. */
export type MessagesRequestBody = CountTokensBody & Partial<Pick<MessagesBody, "max_tokens" | "stop_sequences" | "temperature" | "top_p" | "top_k">>;

/**
 * Maps and checks a request against the model it names (`model` as the client sent it, for messages): throws
 * CapabilityError when the model cannot chat or use tools, and InvalidRequestError naming the field for anything
 * else unusable (server tools, unknown blocks, images a model cannot see, a `tool_choice` without its tool).
 * `thinking` on a model that cannot think is dropped rather than refused: agents turn it on whatever the model, and
 * such a model answers the same without it.
 */
export function toChatRequest(body: MessagesRequestBody, record: ModelRecord, model: string): MappedMessages {
  const has = (capability: Capability): boolean => record.metadata.capabilities.includes(capability);
  if (!has("completion")) throw new CapabilityError(model, "chat");
  const tools = toTools(body.tools);
  if (tools && !has("tools")) throw new CapabilityError(model, "tools");
  const options = anthropicOptions(record, body);
  const request: ChatRequest = dropUndefined({
    messages: toMessages(body, record.system, { vision: has("vision"), model }),
    tools,
    toolChoice: toToolChoice(body.tool_choice, tools),
    parallelToolCalls: parallelToolCalls(body.tool_choice),
    format: toOutputFormat(body.output_config?.format),
    sampling: toSampling(options),
    thinking: toThinking(body, has("thinking")),
  });
  return { request, options };
}

/**
 * A request's model options, most specific first: the Messages fields (`max_tokens`, `stop_sequences`,
 * `temperature`, `top_p`, `top_k`), then the extra `options` object and `num_ctx`, then the model's stored
 * parameters, then Anthropic's own defaults for what is still unset: temperature 1 and no nucleus cut (top_p 1).
 */
export function anthropicOptions(record: ModelRecord, body: MessagesRequestBody): ModelOptions {
  const options = requestOptions(record, body);
  const overrides = dropUndefined({
    temperature: body.temperature,
    top_p: body.top_p,
    top_k: body.top_k,
    stop: body.stop_sequences,
    num_predict: body.max_tokens,
  });
  const merged: ModelOptions = { ...options, ...overrides };
  merged.temperature ??= 1;
  merged.top_p ??= 1;
  return merged;
}

function toOutputFormat(format: { schema: Record<string, unknown> } | undefined): OutputFormat {
  return format ? { type: "json_schema", schema: format.schema } : { type: "text" };
}

/**
 * Custom tools → domain tools. Anthropic's server tools (web search, code execution, bash, the text editor, …) run
 * on Anthropic's servers: a 400 naming the tool's type, since ignoring one would silently change what the model can do.
 */
function toTools(tools: WireTool[] | undefined): ToolDefinition[] | undefined {
  if (!tools || tools.length === 0) return undefined;
  return tools.map((tool, i) => {
    if (tool.type !== undefined && tool.type !== "custom") {
      throw new InvalidRequestError(`tools[${i}].type: ${JSON.stringify(tool.type)} is one of Anthropic's server tools, which this server does not run; define a custom tool (name, description, input_schema) instead`);
    }
    if (tool.input_schema === undefined) throw new InvalidRequestError(`tools[${i}].input_schema: required for a custom tool`);
    return dropUndefined({ name: tool.name, description: tool.description, parameters: tool.input_schema });
  });
}

/** `auto` → auto, `any` → required, `tool` → that function (it must be among the tools), `none` → none. */
function toToolChoice(choice: WireToolChoice, tools: ToolDefinition[] | undefined): ToolChoice | undefined {
  if (choice === undefined) return undefined;
  if (choice.type === "auto" || choice.type === "none") return { type: choice.type };
  if (!tools) throw new InvalidRequestError(`tool_choice: ${JSON.stringify(choice.type)} needs tools`);
  if (choice.type === "any") return { type: "required" };
  if (!tools.some((tool) => tool.name === choice.name)) throw new InvalidRequestError(`tool_choice.name: no tool is named ${JSON.stringify(choice.name)}`);
  return { type: "function", name: choice.name };
}

function parallelToolCalls(choice: WireToolChoice): boolean | undefined {
  if (choice === undefined || choice.type === "none" || choice.disable_parallel_tool_use === undefined) return undefined;
  return !choice.disable_parallel_tool_use;
}

/**
 * `thinking`: `disabled` turns thinking off; `enabled` (with its `budget_tokens`) and `adaptive` turn it on, at
 * `output_config.effort` when set (`xhigh` is our `max`). On a model that cannot think, only `disabled` is passed on.
 */
function toThinking(body: MessagesRequestBody, canThink: boolean): ThinkingRequest | undefined {
  const thinking = body.thinking;
  if (thinking === undefined) return undefined;
  if (thinking.type === "disabled") return { enabled: false };
  if (!canThink) return undefined;
  const effort = body.output_config?.effort;
  return dropUndefined({
    enabled: true,
    effort: effort !== undefined ? toEffort(effort) : undefined,
    budgetTokens: thinking.type === "enabled" ? thinking.budget_tokens : undefined,
  });
}

function toEffort(effort: WireEffort): ThinkingEffort {
  return effort === "xhigh" ? "max" : effort;
}

interface MessageContext {
  vision: boolean;
  model: string;
}

/**
 * Domain messages: `system` first (the model's SYSTEM prompt when the conversation has no system text at all), then
 * each message where it occurs. One Anthropic message may become several domain messages: a user turn's
 * `tool_result` blocks become tool messages, in their order, around the turn's own text.
 */
export function toMessages(body: Pick<CountTokensBody, "system" | "messages">, defaultSystem: string | undefined, context: MessageContext): Message[] {
  const mapped: Message[] = [];
  if (body.system !== undefined) mapped.push({ role: "system", content: systemText(body.system, "system") });
  const toolNames = new Map<string, string>();
  body.messages.forEach((m, i) => mapped.push(...toDomain(m, `messages[${i}]`, toolNames, context)));
  if (defaultSystem && !mapped.some((m) => m.role === "system")) mapped.unshift({ role: "system", content: defaultSystem });
  return mapped;
}

/**
 * A system prompt's text: the string, or its text blocks joined by newlines. Claude Code starts its system prompt
 * with an `x-anthropic-billing-header: …; cch=<hash>;` line whose hash changes on every request; it means nothing
 * to a model, and it would end the reuse of the cached prompt prefix right there, so the hash is blanked (as
 * llama.cpp's server does).
 */
function systemText(system: string | WireSystemBlock[], field: string): string {
  if (typeof system === "string") return blankBillingHash(system);
  return system
    .map((block, j) => {
      if (block.type !== "text") throw new InvalidRequestError(`${field}[${j}].type: only text blocks are supported in a system prompt, not ${JSON.stringify(block.type)}`);
      return blankBillingHash(block.text ?? "");
    })
    .join("\n");
}

function blankBillingHash(text: string): string {
  if (!text.startsWith("x-anthropic-billing-header:")) return text;
  return text.replace(/^(x-anthropic-billing-header:[^\n]*?\bcch=)[^;\n]*;/, "$1;");
}

function toDomain(m: WireMessage, field: string, toolNames: Map<string, string>, context: MessageContext): Message[] {
  switch (m.role) {
    case "system":
      return [{ role: "system", content: typeof m.content === "string" ? m.content : systemText(m.content, `${field}.content`) }];
    case "assistant":
      return [assistantMessage(m.content, field, toolNames)];
    case "user":
      return userMessages(m.content, field, toolNames, context);
    default:
      return m.role satisfies never;
  }
}

/**
 * An assistant turn: its text blocks (joined by newlines), its `tool_use` blocks as tool calls, and its `thinking`
 * blocks as the turn's reasoning (a thinking template shows it to the model again). `redacted_thinking` is
 * encrypted reasoning only Anthropic can read: ignored.
 */
function assistantMessage(content: string | WireContentBlock[], field: string, toolNames: Map<string, string>): Message {
  if (typeof content === "string") return { role: "assistant", content };
  const texts: string[] = [];
  const thoughts: string[] = [];
  const toolCalls: ToolCall[] = [];
  content.forEach((block, j) => {
    const at = `${field}.content[${j}]`;
    switch (block.type) {
      case "text":
        texts.push(block.text ?? "");
        break;
      case "thinking":
        thoughts.push(block.thinking ?? "");
        break;
      case "redacted_thinking":
        break;
      case "tool_use": {
        if (block.id === undefined) throw new InvalidRequestError(`${at}.id: required in a tool_use block`);
        if (block.name === undefined) throw new InvalidRequestError(`${at}.name: required in a tool_use block`);
        toolCalls.push({ id: block.id, name: block.name, arguments: parseToolArguments(block.input, `${at}.input`) });
        toolNames.set(block.id, block.name);
        break;
      }
      default:
        throw new InvalidRequestError(`${at}.type: ${JSON.stringify(block.type)} blocks are not supported in an assistant message`);
    }
  });
  const thinking = thoughts.join("\n");
  return dropUndefined({
    role: "assistant" as const,
    content: texts.join("\n"),
    toolCalls: toolCalls.length > 0 ? toolCalls : undefined,
    thinking: thinking !== "" ? thinking : undefined,
  });
}

/**
 * A user turn: each `tool_result` block becomes a tool message (its text; `is_error` says so with an "Error: "
 * prefix), and each run of text and image blocks a user message, in the order they come. Images inside tool
 * results (a file-reading tool's) cannot be part of a tool message: they go with the user message after the
 * results (one with no text if the turn has none).
 */
function userMessages(content: string | WireContentBlock[], field: string, toolNames: Map<string, string>, context: MessageContext): Message[] {
  if (typeof content === "string") return [{ role: "user", content }];
  const messages: Message[] = [];
  let texts: string[] = [];
  let images: string[] = [];
  let resultImages: string[] = [];
  const flush = (): void => {
    if (texts.length === 0 && images.length === 0) return;
    const all = [...resultImages, ...images];
    messages.push({ role: "user", content: texts.join("\n"), ...(all.length > 0 && { images: all }) });
    texts = [];
    images = [];
    resultImages = [];
  };
  content.forEach((block, j) => {
    const at = `${field}.content[${j}]`;
    switch (block.type) {
      case "text":
        texts.push(block.text ?? "");
        break;
      case "image":
        images.push(imageData(block.source, `${at}.source`, context));
        break;
      case "tool_result": {
        flush();
        if (block.tool_use_id === undefined) throw new InvalidRequestError(`${at}.tool_use_id: required in a tool_result block`);
        const result = toolResult(block, at, context);
        resultImages.push(...result.images);
        const toolName = toolNames.get(block.tool_use_id);
        messages.push({ role: "tool", content: result.text, toolCallId: block.tool_use_id, ...(toolName !== undefined && { toolName }) });
        break;
      }
      default:
        throw new InvalidRequestError(`${at}.type: ${JSON.stringify(block.type)} blocks are not supported in a user message`);
    }
  });
  flush();
  if (resultImages.length > 0) messages.push({ role: "user", content: "", images: resultImages });
  return messages;
}

function toolResult(block: WireContentBlock, field: string, context: MessageContext): { text: string; images: string[] } {
  const images: string[] = [];
  const content: string | WireResultBlock[] = block.content ?? "";
  const text =
    typeof content === "string"
      ? content
      : content
          .map((part, k) => {
            const at = `${field}.content[${k}]`;
            if (part.type === "text") return part.text ?? "";
            if (part.type === "image") {
              images.push(imageData(part.source, `${at}.source`, context));
              return undefined;
            }
            throw new InvalidRequestError(`${at}.type: ${JSON.stringify(part.type)} blocks are not supported in a tool result`);
          })
          .filter((part) => part !== undefined)
          .join("\n");
  return { text: block.is_error ? `Error: ${text}` : text, images };
}

/** An image block's base64 data; images need a vision model, and URLs and uploaded files are not fetched. */
function imageData(source: WireContentBlock["source"], field: string, context: MessageContext): string {
  if (!context.vision) throw new InvalidRequestError(`${field}: "${context.model}" does not support images`);
  if (source?.type !== "base64" || source.data === undefined) {
    throw new InvalidRequestError(`${field}: expected {"type": "base64", "media_type", "data"} (image URLs and files are not fetched)`);
  }
  return source.data;
}
