import type { ChatRequest } from "../../src/domain/chat.js";
import type { GenerationEvent } from "../../src/domain/generation.js";

/** Every event of a generation, and its text joined. */
export async function collect(events: AsyncIterable<GenerationEvent>): Promise<{ text: string; events: GenerationEvent[] }> {
  const all: GenerationEvent[] = [];
  for await (const event of events) all.push(event);
  return { text: all.map((e) => (e.type === "text" ? e.text : "")).join(""), events: all };
}

/** A greedy one-turn chat request ("hi"), with overrides. */
export function chatRequest(overrides: Partial<ChatRequest> = {}): ChatRequest {
  return { messages: [{ role: "user", content: "hi" }], format: { type: "text" }, sampling: { temperature: 0 }, ...overrides };
}
