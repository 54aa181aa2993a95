/** Pure parts of what agents need from the engines: later system messages as user text, the thinking budget's field. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Message } from "../../src/domain/chat.js";
import { toThinkingBody } from "../../src/engine/llama-server/request-body.js";
import { hasLaterSystem, rendersSystemInPlace, systemAsUserTurns } from "../../src/engine/system-turns.js";

const user = (content: string): Message => ({ role: "user", content });
const system = (content: string): Message => ({ role: "system", content });
const assistant = (content: string): Message => ({ role: "assistant", content });
const call: Message = { role: "assistant", content: "", toolCalls: [{ id: "c1", name: "read", arguments: {} }] };
const result: Message = { role: "tool", content: "file text", toolCallId: "c1" };

test("a later system message joins the next user message, after the tool results between them", () => {
  assert.deepEqual(systemAsUserTurns([system("S"), user("U1"), assistant("A"), system("R"), user("U2")]), [system("S"), user("U1"), assistant("A"), user("R\n\nU2")]);
  assert.deepEqual(systemAsUserTurns([system("S"), user("U1"), call, system("R"), result, user("U2")]), [system("S"), user("U1"), call, result, user("R\n\nU2")]);
  assert.deepEqual(systemAsUserTurns([user("U1"), assistant("A"), system("R1"), system("R2"), user("U2")]), [user("U1"), assistant("A"), user("R1\n\nR2\n\nU2")]);
  // A second leading system message is a later one too: a template that takes one only first takes it as user text.
  assert.deepEqual(systemAsUserTurns([system("S1"), system("S2"), user("U")]), [system("S1"), user("S2\n\nU")]);
  // Images stay with their message.
  assert.deepEqual(systemAsUserTurns([user("U1"), assistant("A"), system("R"), { role: "user", content: "U2", images: ["aW1n"] }]), [
    user("U1"),
    assistant("A"),
    { role: "user", content: "R\n\nU2", images: ["aW1n"] },
  ]);
});

test("without a user message after it, a later system message joins the user message before it, else is a user turn of its own", () => {
  assert.deepEqual(systemAsUserTurns([user("U"), system("R"), assistant("A")]), [user("U\n\nR"), assistant("A")]);
  assert.deepEqual(systemAsUserTurns([user("U"), assistant("A"), system("R")]), [user("U"), assistant("A"), user("R")]);
  assert.deepEqual(systemAsUserTurns([user("U"), call, result, system("R"), assistant("A")]), [user("U"), call, result, user("R"), assistant("A")]);
});

test("a growing conversation renders its earlier turns the same way at every turn (the prefix cache keeps working)", () => {
  const turns: Message[][] = [
    [system("S"), user("U1"), system("R0")],
    [assistant("A1"), call, result, system("R1"), user("U2")],
    [assistant("A2"), call, system("R2"), result],
    [assistant("A3"), system("R3")],
    [assistant("A4"), user("U5")],
  ];
  let conversation: Message[] = [];
  let previous: Message[] = [];
  for (const turn of turns) {
    conversation = [...conversation, ...turn];
    const rendered = systemAsUserTurns(conversation);
    // Every message rendered before stays as it was, except the last, which may take text that came after it.
    assert.deepEqual(rendered.slice(0, Math.max(0, previous.length - 1)), previous.slice(0, -1));
    previous = rendered;
  }
  assert.equal(systemAsUserTurns([user("U"), assistant("A")]).length, 2, "nothing to move: the same messages");
});

test("only a system message after the first message needs the template's consent; the probe checks order and presence", () => {
  assert.equal(hasLaterSystem([system("S"), user("U")]), false);
  assert.equal(hasLaterSystem([user("U"), system("R")]), true);
  const inOrder = "probe-first-question|probe-first-answer|probe-later-instruction|probe-second-question";
  assert.equal(rendersSystemInPlace(`<s>${inOrder}`), true);
  assert.equal(rendersSystemInPlace("probe-first-question probe-first-answer probe-second-question"), false, "dropped");
  assert.equal(rendersSystemInPlace("probe-later-instruction probe-first-question probe-first-answer probe-second-question"), false, "moved first");
});

test("a thinking budget is llama-server's reasoning_budget_tokens, sent only with thinking on", () => {
  assert.deepEqual(toThinkingBody({ enabled: true, budgetTokens: 1024 }), { chat_template_kwargs: { enable_thinking: true }, reasoning_budget_tokens: 1024 });
  assert.deepEqual(toThinkingBody({ enabled: true, effort: "low", budgetTokens: 0 }), {
    chat_template_kwargs: { enable_thinking: true },
    reasoning_effort: "low",
    reasoning_budget_tokens: 0,
  });
  assert.deepEqual(toThinkingBody({ enabled: false, budgetTokens: 1024 }), { chat_template_kwargs: { enable_thinking: false }, reasoning_effort: "none" });
});
