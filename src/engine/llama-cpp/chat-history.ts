import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelResponse, ChatModelFunctions } from "node-llama-cpp";
import type { Message, ToolDefinition } from "../../domain/chat.js";

/**
 * Domain messages → node-llama-cpp chat history. Tool results are attached to the assistant tool call they
 * answer (matched by call id, then tool name, then order), which is how node-llama-cpp renders them; a tool
 * message that answers no call becomes a user turn so its content is never dropped.
 */
export function toChatHistory(messages: readonly Message[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  let pending: { calls: ChatModelFunctionCall[]; ids: (string | undefined)[] } | undefined;
  for (const message of messages) {
    switch (message.role) {
      case "system":
        history.push({ type: "system", text: message.content });
        pending = undefined;
        break;
      case "user":
        history.push({ type: "user", text: message.content });
        pending = undefined;
        break;
      case "assistant": {
        const response: ChatModelResponse["response"] = [];
        if (message.content !== "") response.push(message.content);
        const calls = (message.toolCalls ?? []).map(
          (call): ChatModelFunctionCall => ({ type: "functionCall", name: call.name, params: call.arguments, result: undefined }),
        );
        response.push(...calls);
        history.push({ type: "model", response });
        pending = calls.length > 0 ? { calls, ids: (message.toolCalls ?? []).map((c) => c.id) } : undefined;
        break;
      }
      case "tool": {
        const call = pending && findCall(pending, message.toolCallId, message.toolName);
        if (call) call.result = parseResult(message.content);
        else history.push({ type: "user", text: message.content });
        break;
      }
      default:
        message satisfies never;
    }
  }
  return history;
}

function findCall(
  pending: { calls: ChatModelFunctionCall[]; ids: (string | undefined)[] },
  id: string | undefined,
  name: string | undefined,
): ChatModelFunctionCall | undefined {
  const open = (i: number): boolean => pending.calls[i]?.result === undefined;
  const byId = id === undefined ? -1 : pending.ids.findIndex((candidate, i) => candidate === id && open(i));
  if (byId !== -1) return pending.calls[byId];
  const byName = name === undefined ? -1 : pending.calls.findIndex((c, i) => c.name === name && open(i));
  if (byName !== -1) return pending.calls[byName];
  return pending.calls.find((_c, i) => open(i));
}

function parseResult(content: string): unknown {
  try {
    return JSON.parse(content);
  } catch {
    return content;
  }
}

/** Tool definitions → node-llama-cpp functions (documented in the prompt, calls constrained by a grammar). */
export function toFunctions(tools: readonly ToolDefinition[]): ChatModelFunctions {
  return Object.fromEntries(
    tools.map((tool) => [
      tool.name,
      {
        ...(tool.description !== undefined && { description: tool.description }),
        ...(tool.parameters !== undefined && { params: tool.parameters as ChatModelFunctions[string]["params"] }),
      },
    ]),
  );
}
