import { ndjsonLines, request } from "../../api.js";
import type { ChatChunk, ChatMessage, ChatSettings } from "./types.js";

/** The settings' tools JSON as /api/chat `tools` (a list; one tool object becomes a list of one); throws when not JSON. */
export function parseTools(text: string): unknown[] | undefined {
  if (text.trim() === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`Tools: not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (Array.isArray(parsed)) return parsed;
  if (parsed && typeof parsed === "object") return [parsed];
  throw new Error("Tools: expected a list of tools or one tool object");
}

/** The messages as /api/chat takes them: the system prompt first, failed replies left out. */
function wireMessages(system: string, messages: ChatMessage[]): Array<Record<string, unknown>> {
  const wire: Array<Record<string, unknown>> = system.trim() === "" ? [] : [{ role: "system", content: system }];
  for (const m of messages) {
    if (m.role === "assistant" && m.content === "" && !m.toolCalls?.length) continue;
    wire.push({
      role: m.role,
      content: m.content,
      ...(m.thinking && { thinking: m.thinking }),
      ...(m.toolCalls?.length && { tool_calls: m.toolCalls }),
      ...(m.toolName && { tool_name: m.toolName }),
    });
  }
  return wire;
}

/** POST /api/chat's body for the conversation so far. */
export function chatBody(model: string, settings: ChatSettings, messages: ChatMessage[], canThink: boolean): Record<string, unknown> {
  const options = Object.fromEntries(Object.entries(settings.options).filter(([, v]) => typeof v === "number" && Number.isFinite(v)));
  const tools = parseTools(settings.tools);
  return {
    model,
    stream: true,
    messages: wireMessages(settings.system, messages),
    ...(Object.keys(options).length > 0 && { options }),
    ...(canThink && { think: settings.think }),
    ...(tools && { tools }),
  };
}

/** Streams /api/chat, giving each line to `onChunk`; rejects with ApiError when refused, AbortError when stopped. */
export async function streamChat(body: Record<string, unknown>, signal: AbortSignal, onChunk: (chunk: ChatChunk) => void): Promise<void> {
  const response = await request("POST", "/api/chat", body, signal);
  for await (const chunk of ndjsonLines<ChatChunk>(response)) onChunk(chunk);
}

/** The reply `message` with one stream line added: text and reasoning appended, calls collected, stats at the end. */
export function withChunk(message: ChatMessage, chunk: ChatChunk): ChatMessage {
  const next = { ...message };
  if (typeof chunk.error === "string") next.error = chunk.error;
  const delta = chunk.message;
  if (delta) {
    if (delta.content) next.content += delta.content;
    if (delta.thinking) next.thinking = (next.thinking ?? "") + delta.thinking;
    if (delta.tool_calls?.length) next.toolCalls = [...(next.toolCalls ?? []), ...delta.tool_calls];
  }
  if (chunk.done) {
    next.stats = {
      tokens: chunk.eval_count ?? 0,
      evalNanoseconds: chunk.eval_duration ?? 0,
      ...(chunk.prompt_eval_count !== undefined && { promptTokens: chunk.prompt_eval_count }),
      ...(chunk.done_reason !== undefined && { doneReason: chunk.done_reason }),
    };
  }
  return next;
}
