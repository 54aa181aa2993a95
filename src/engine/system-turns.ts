import type { Message } from "../domain/chat.js";

/**
 * System messages after the first message (agents insert reminders mid-conversation). Most chat templates render
 * them where they occur (Qwen's: `message.role == "system" and not loop.first`; ChatML's render every message), but
 * some accept only a leading one: they raise an error on a later one (strict role alternation), drop it, or move it.
 * Each engine renders SYSTEM_PROBE once per model with the model's own template; where it is not rendered in place,
 * later system messages go to the model as user text instead (`systemAsUserTurns`), so that they are never lost and
 * never an error, and the decision is the same for every request of the model (the prefix cache keeps working).
 */

/** A conversation whose rendered prompt shows whether the template keeps a later system message where it occurs. */
export const SYSTEM_PROBE: readonly Message[] = [
  { role: "user", content: "probe-first-question" },
  { role: "assistant", content: "probe-first-answer" },
  { role: "system", content: "probe-later-instruction" },
  { role: "user", content: "probe-second-question" },
];

/** Whether a rendered SYSTEM_PROBE holds every message's text in the conversation's order. */
export function rendersSystemInPlace(prompt: string): boolean {
  let at = 0;
  for (const message of SYSTEM_PROBE) {
    const found = prompt.indexOf(message.content, at);
    if (found === -1) return false;
    at = found + message.content.length;
  }
  return true;
}

/** Whether a conversation has a system message after its first message (only those need a template's consent). */
export function hasLaterSystem(messages: readonly Message[]): boolean {
  return messages.some((message, index) => index > 0 && message.role === "system");
}

/**
 * The conversation for a template that takes a system message only first: every other system message becomes user
 * text, joined (blank line between) to the next user message, after any tool results in between; where no user
 * message follows before the next assistant turn (or the end), to the user message just before it, else as a user
 * turn of its own. Joining keeps roles alternating, which strict templates require. A message's rendering depends
 * only on the messages around it, so a conversation that grows renders its earlier turns the same way every time.
 */
export function systemAsUserTurns(messages: readonly Message[]): Message[] {
  const out: Message[] = [];
  let pending: string[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    const text = pending.join("\n\n");
    pending = [];
    const last = out.at(-1);
    if (last?.role === "user") out[out.length - 1] = { ...last, content: `${last.content}\n\n${text}` };
    else out.push({ role: "user", content: text });
  };
  messages.forEach((message, index) => {
    if (message.role === "system" && index > 0) {
      pending.push(message.content);
    } else if (message.role === "user" && pending.length > 0) {
      out.push({ ...message, content: [...pending, message.content].join("\n\n") });
      pending = [];
    } else {
      if (message.role === "assistant") flush();
      out.push(message);
    }
  });
  flush();
  return out;
}
