import type { ChatRequest, Message, OutputFormat, ToolCall, ToolChoice, ToolDefinition } from "../../domain/chat.js";
import { CapabilityError, InvalidRequestError } from "../../domain/errors.js";
import type { Capability, ModelRecord } from "../../domain/model.js";
import { dropUndefined } from "../../inference/model-options.js";
import { parseToolArguments } from "../tool-arguments.js";
import type { MappedChat } from "./chat-request.js";
import { toThinking } from "./chat-request.js";
import type { PlacedItem } from "./responses-input.js";
import { parseTool, type ResponsesBody, type WireFunctionTool, type WireInputPart, type WireResponsesToolChoice, type WireTextFormat } from "./responses-schema.js";
import { openaiOptions, openaiSampling } from "./sampling.js";

/** Pure mapping of a Responses API request (its conversation resolved) onto the domain ChatRequest. */

/** The `include` value that asks for log-probabilities on the output text. */
export const LOGPROBS_INCLUDE = "message.output_text.logprobs";

/**
 * Maps and checks a request against its model (`model` as the client named it): CapabilityError when the model
 * cannot do what is asked (chat, tools, images, thinking), InvalidRequestError naming the field for anything else.
 * `instructions` become a first system message; the model's SYSTEM prompt is used when there is no system message.
 */
export function toResponsesChat(body: ResponsesBody, conversation: readonly PlacedItem[], record: ModelRecord): MappedChat {
  const has = (capability: Capability): boolean => record.metadata.capabilities.includes(capability);
  if (!has("completion")) throw new CapabilityError(body.model, "chat");
  const tools = toTools(body.tools);
  if (tools && !has("tools")) throw new CapabilityError(body.model, "tools");
  const thinking = toThinking({ reasoning: body.reasoning });
  if (thinking?.enabled && !has("thinking")) throw new CapabilityError(body.model, "thinking");

  const options = openaiOptions(record, body, body.max_output_tokens);
  const logprobs = body.top_logprobs !== undefined || (body.include ?? []).includes(LOGPROBS_INCLUDE);
  const request: ChatRequest = dropUndefined({
    messages: toMessages(conversation, body.instructions, record.system, { vision: has("vision"), model: body.model }),
    tools,
    toolChoice: toToolChoice(body.tool_choice, tools),
    parallelToolCalls: body.parallel_tool_calls,
    format: toFormat(body.text?.format),
    sampling: openaiSampling(options, undefined),
    thinking,
    logprobs: logprobs ? { top: body.top_logprobs ?? 0 } : undefined,
    // OpenAI's default (`disabled`): a conversation longer than the context fails (context_length_exceeded).
    truncate: body.truncation === "auto",
  });
  return { request, options };
}

/** `text.format` → the domain's output format (`json_schema` without a schema is any JSON). */
export function toFormat(format: WireTextFormat | undefined): OutputFormat {
  if (format === undefined || format.type === "text") return { type: "text" };
  if (format.type === "json_object") return { type: "json" };
  return format.schema ? { type: "json_schema", schema: format.schema } : { type: "json" };
}

/** The request's function tools, checked; other tool kinds are refused by `parseTool`. */
export function functionTools(tools: readonly unknown[] | undefined): WireFunctionTool[] {
  return (tools ?? []).map((tool, index) => parseTool(tool, ["tools", index]));
}

function toTools(tools: readonly unknown[] | undefined): ToolDefinition[] | undefined {
  const parsed = functionTools(tools);
  if (parsed.length === 0) return undefined;
  return parsed.map((tool) => dropUndefined({ name: tool.name, description: tool.description, parameters: tool.parameters }));
}

function toToolChoice(choice: WireResponsesToolChoice | undefined, tools: ToolDefinition[] | undefined): ToolChoice | undefined {
  if (choice === undefined) return undefined;
  if (choice === "auto" || choice === "none") return { type: choice };
  if (typeof choice === "object" && choice.type !== "function") {
    throw new InvalidRequestError(`tool_choice.type: ${JSON.stringify(choice.type)} is not supported (only "auto", "none", "required" or a function)`);
  }
  if (!tools) throw new InvalidRequestError(`tool_choice: ${JSON.stringify(choice === "required" ? choice : "function")} needs tools`);
  if (choice === "required") return { type: "required" };
  const name = choice.name;
  if (name === undefined) throw new InvalidRequestError("tool_choice.name: expected the function's name");
  if (!tools.some((tool) => tool.name === name)) throw new InvalidRequestError(`tool_choice.name: no tool is named ${JSON.stringify(name)}`);
  return { type: "function", name };
}

interface MessageContext {
  vision: boolean;
  model: string;
}

type AssistantMessage = Extract<Message, { role: "assistant" }>;

/**
 * Domain messages of a conversation. One assistant turn is the run of reasoning, assistant messages and function
 * calls between other items: reasoning becomes its thinking, messages its text, calls its tool calls (a reasoning
 * or a message after text or calls starts the next turn, as the model produced them step by step).
 */
export function toMessages(items: readonly PlacedItem[], instructions: string | undefined, defaultSystem: string | undefined, context: MessageContext): Message[] {
  const messages: Message[] = [];
  if (instructions !== undefined) messages.push({ role: "system", content: instructions });
  const callNames = new Map<string, string>();
  let turn: AssistantMessage | undefined;
  const assistantTurn = (startsStep: boolean): AssistantMessage => {
    if (turn && !(startsStep && (turn.content !== "" || turn.toolCalls))) return turn;
    turn = { role: "assistant", content: "" };
    messages.push(turn);
    return turn;
  };
  for (const { item, field } of items) {
    switch (item.type) {
      case "reasoning": {
        const text = reasoningText(item);
        if (text === "") break; // e.g. only another server's encrypted reasoning: nothing this model can read
        const current = assistantTurn(true);
        current.thinking = current.thinking === undefined ? text : `${current.thinking}\n${text}`;
        break;
      }
      case "function_call": {
        const call: ToolCall = { id: item.call_id, name: item.name, arguments: parseToolArguments(item.arguments, `${field}.arguments`) };
        callNames.set(item.call_id, item.name);
        const current = assistantTurn(false);
        current.toolCalls = [...(current.toolCalls ?? []), call];
        break;
      }
      case "function_call_output":
        turn = undefined;
        messages.push(
          dropUndefined({
            role: "tool" as const,
            content: textOf(item.output, `${field}.output`, ["input_text", "output_text"]),
            toolCallId: item.call_id,
            toolName: callNames.get(item.call_id),
          }),
        );
        break;
      case "message":
        if (item.role === "assistant") {
          const text = textOf(item.content, `${field}.content`, ["output_text", "refusal", "input_text"]);
          const current = assistantTurn(true);
          current.content = text;
          break;
        }
        turn = undefined;
        if (item.role === "user") messages.push(userMessage(item.content, `${field}.content`, context));
        else messages.push({ role: "system", content: textOf(item.content, `${field}.content`, ["input_text"]) });
        break;
      default:
        item satisfies never;
    }
  }
  if (defaultSystem && !messages.some((m) => m.role === "system")) messages.unshift({ role: "system", content: defaultSystem });
  return messages;
}

/** What an earlier reasoning item said: its full text when given, else its summary (ours is the full text). */
function reasoningText(item: Extract<PlacedItem["item"], { type: "reasoning" }>): string {
  const parts = item.content && item.content.length > 0 ? item.content : item.summary;
  return parts.map((part) => part.text).join("\n");
}

/** The text of a content: a string, or its text parts joined by newlines (as chat's are). */
function textOf(content: string | WireInputPart[], field: string, allowed: readonly string[]): string {
  if (typeof content === "string") return content;
  return content
    .map((part, j) => {
      if (!allowed.includes(part.type)) throw new InvalidRequestError(`${field}[${j}].type: ${JSON.stringify(part.type)} parts are not supported here`);
      return part.text ?? part.refusal ?? "";
    })
    .join("\n");
}

/** A user turn: its text parts joined, its images (base64 `data:` URLs; they need a vision model). */
function userMessage(content: string | WireInputPart[], field: string, context: MessageContext): Message {
  if (typeof content === "string") return { role: "user", content };
  const texts: string[] = [];
  const images: string[] = [];
  content.forEach((part, j) => {
    const at = `${field}[${j}]`;
    if (part.type === "input_text") texts.push(part.text ?? "");
    else if (part.type === "input_image") images.push(imageData(part.image_url, at, context));
    else throw new InvalidRequestError(`${at}.type: ${JSON.stringify(part.type)} parts are not supported in a user message`);
  });
  return { role: "user", content: texts.join("\n"), ...(images.length > 0 && { images }) };
}

function imageData(url: string | undefined, field: string, context: MessageContext): string {
  if (!context.vision) throw new InvalidRequestError(`${field}: "${context.model}" does not support images`);
  const data = url?.match(/^data:image\/[a-z0-9.+-]+;base64,(.+)$/i)?.[1];
  if (data === undefined) throw new InvalidRequestError(`${field}.image_url: expected a data: URL with base64 image data (remote URLs and file ids are not fetched)`);
  return data;
}
