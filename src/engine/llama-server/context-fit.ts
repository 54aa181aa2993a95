import { ContextOverflowError } from "../../domain/errors.js";
import type { OaiMessage } from "./request-body.js";

/** A conversation as it will be sent, and its prompt's length in tokens when it was measured. */
export interface FittedConversation {
  messages: OaiMessage[];
  promptTokens?: number;
}

/**
 * Whether a conversation might not fit `contextSize` tokens, by a cheap over-estimate (half a token per character of
 * its JSON, tools and template variables included), so that the exact measure (templating and tokenizing it, two
 * requests) is only paid for long conversations. Text denser than that (some scripts take a token per character) is
 * caught by llama-server's own refusal instead (StreamPlan.refit).
 */
export function mightOverflow(body: Record<string, unknown>, contextSize: number): boolean {
  return JSON.stringify(body).length / 2 >= contextSize;
}

/**
 * Fits a conversation in the context: a prompt of fewer tokens than `contextSize` is kept whole; a longer one loses
 * its oldest turns (each from a user message up to the next), the system messages before the cut staying, by a
 * binary search over the cuts (so about log2(turns) measures). `truncate` false, or a last turn that alone is too
 * long, fails with ContextOverflowError.
 */
export async function fitConversation(
  messages: readonly OaiMessage[],
  contextSize: number,
  truncate: boolean,
  count: (messages: OaiMessage[]) => Promise<number>,
): Promise<FittedConversation> {
  const total = await count([...messages]);
  if (total < contextSize) return { messages: [...messages], promptTokens: total };
  if (!truncate) throw new ContextOverflowError(`the conversation takes ${total} tokens, more than the context window of ${contextSize}, and truncation is off`);
  const firstTurn = messages.findIndex((m) => m.role !== "system");
  const cuts = messages.flatMap((m, i) => (i > firstTurn && m.role === "user" ? [i] : []));
  const keep = (cut: number): OaiMessage[] => [...messages.slice(0, cut).filter((m) => m.role === "system"), ...messages.slice(cut)];
  let best: FittedConversation | undefined;
  let low = 0;
  let high = cuts.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const kept = keep(cuts[middle] ?? 0);
    const tokens = await count(kept);
    if (tokens < contextSize) {
      best = { messages: kept, promptTokens: tokens };
      high = middle - 1;
    } else {
      low = middle + 1;
    }
  }
  if (!best) throw new ContextOverflowError(`the conversation's last turn alone does not fit in the context window of ${contextSize} tokens`);
  return best;
}
