/** The llama-server engine's pure parts: reasoning split by markers, log-probabilities, fitting a conversation, request fields. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ContextOverflowError, InvalidRequestError } from "../../src/domain/errors.js";
import { fitConversation } from "../../src/engine/llama-server/context-fit.js";
import { toTokenLogprobs } from "../../src/engine/llama-server/logprobs.js";
import { toLogprobsBody, toSamplingBody, toThinkingBody, toToolsBody, type OaiMessage } from "../../src/engine/llama-server/request-body.js";
import { ThinkingSplitter, type OutputPart } from "../../src/engine/llama-server/thinking-split.js";

/** Feeds `chunks` one by one and returns the parts, adjacent ones of a kind joined. */
function split(prompt: string, chunks: string[]): OutputPart[] {
  const splitter = new ThinkingSplitter(prompt);
  const parts = [...chunks.flatMap((c) => splitter.push(c)), ...splitter.end()];
  return parts.reduce<OutputPart[]>((out, part) => {
    const last = out.at(-1);
    if (last?.type === part.type) last.text += part.text;
    else out.push({ ...part });
    return out;
  }, []);
}

test("thinking split: an opening marker at the start of the output, split across chunks; whitespace at the markers dropped", () => {
  assert.deepEqual(split("<|im_start|>assistant\n", ["<th", "ink>\nI", " think", ".\n</", "think>\n\n", "Answer", " here"]), [
    { type: "thinking", text: "\nI think.\n" },
    { type: "text", text: "Answer here" },
  ]);
  assert.deepEqual(split("", ["  ", "[THINK]a[/THINK]b"]), [
    { type: "thinking", text: "a" },
    { type: "text", text: "b" },
  ]);
});

test("thinking split: the prompt opens the block (forced thinking) or closes it (thinking off)", () => {
  assert.deepEqual(split("<|im_start|>assistant\n<think>\n", ["why", "</think>", "so"]), [
    { type: "thinking", text: "why" },
    { type: "text", text: "so" },
  ]);
  assert.deepEqual(split("assistant\n<think>\n\n</think>\n\n", ["<think>x</think>y"]), [{ type: "text", text: "<think>x</think>y" }]);
});

test("thinking split: text that does not open with a marker is all answer, markers later included; an unclosed block is all reasoning", () => {
  assert.deepEqual(split("", ["<", "b>bold</b> <think>"]), [{ type: "text", text: "<b>bold</b> <think>" }]);
  assert.deepEqual(split("", ["<thi"]), [{ type: "text", text: "<thi" }]);
  assert.deepEqual(split("", ["<think>", "still going </thin"]), [{ type: "thinking", text: "still going </thin" }]);
});

test("log-probabilities: natural log, the chosen token's own piece and bytes from the candidates, top cut", () => {
  const entries = [
    {
      id: 7,
      token: "", // held back with a stop string: the entry's own text is empty
      bytes: [],
      logprob: -0.5,
      top_logprobs: [
        { id: 7, token: "Hi", bytes: [72, 105], logprob: -0.5 },
        { id: 8, token: "Yo", bytes: [89, 111], logprob: -1 },
      ],
    },
    { id: 9, token: "", bytes: [0xe2], prob: 0.25, top_probs: [{ id: 9, token: "", bytes: [0xe2], prob: 0.25 }] },
  ];
  const [first, second] = toTokenLogprobs(entries, 1);
  assert.deepEqual(first, { token: "Hi", logprob: -0.5, bytes: [72, 105], top: [{ token: "Hi", logprob: -0.5, bytes: [72, 105] }] });
  assert.equal(second?.token, "\uFFFD", "a piece of a character");
  assert.equal(second?.logprob, Math.log(0.25));
  assert.deepEqual(toTokenLogprobs(entries, 0)[0]?.top, []);
  assert.deepEqual(toTokenLogprobs(undefined, 3), []);
});

test("fitting a conversation: whole when it fits; else the fewest oldest turns dropped, system prompts kept; or an overflow", async () => {
  const m = (role: "system" | "user" | "assistant", content: string): OaiMessage => ({ role, content });
  const conversation = [m("system", "S"), m("user", "u1"), m("assistant", "a1"), m("system", "S2"), m("user", "u2"), m("assistant", "a2"), m("user", "u3")];
  const measured: number[] = [];
  const count = async (messages: OaiMessage[]): Promise<number> => {
    measured.push(messages.length);
    return messages.reduce((n, message) => n + (message.role === "system" ? 1 : 10), 0);
  };
  assert.deepEqual(await fitConversation(conversation, 100, true, count), { messages: conversation, promptTokens: 52 });
  const fitted = await fitConversation(conversation, 35, true, count);
  assert.deepEqual(fitted.messages.map((x) => x.content), ["S", "S2", "u2", "a2", "u3"]);
  assert.equal(fitted.promptTokens, 32);
  const onlyLast = await fitConversation(conversation, 15, true, count);
  assert.deepEqual(onlyLast.messages.map((x) => x.content), ["S", "S2", "u3"]);
  await assert.rejects(fitConversation(conversation, 35, false, count), ContextOverflowError);
  await assert.rejects(fitConversation(conversation, 10, true, count), ContextOverflowError);
  measured.length = 0;
  const long = [m("system", "S"), ...Array.from({ length: 64 }, (_, i) => [m("user", `u${i}`), m("assistant", "a")]).flat()];
  await fitConversation(long, 100, true, count);
  assert.ok(measured.length <= 8, `a binary search: ${measured.length} measures for 64 turns`);
});

test("tool choice: a named function sends that tool alone with required; unknown names are refused; none and parallel pass", () => {
  const tools = [{ name: "a" }, { name: "b", description: "B" }];
  assert.deepEqual(toToolsBody(tools, { type: "function", name: "b" }, false), {
    tools: [{ type: "function", function: { name: "b", description: "B", parameters: { type: "object", properties: {} } } }],
    tool_choice: "required",
    parallel_tool_calls: false,
  });
  assert.equal(toToolsBody(tools, { type: "none" }, undefined).tool_choice, "none");
  assert.equal(toToolsBody(tools, undefined, undefined).tool_choice, undefined);
  assert.deepEqual(toToolsBody([], { type: "required" }, true), {});
  assert.throws(() => toToolsBody(tools, { type: "function", name: "c" }, undefined), (e: unknown) => e instanceof InvalidRequestError && /"c"/.test(e.message));
  assert.throws(() => toToolsBody([], { type: "function", name: "c" }, undefined), InvalidRequestError);
});

test("thinking, log-probabilities and logit bias become llama-server's fields", () => {
  assert.deepEqual(toThinkingBody(undefined), {});
  assert.deepEqual(toThinkingBody({ enabled: false }), { chat_template_kwargs: { enable_thinking: false }, reasoning_effort: "none" });
  assert.deepEqual(toThinkingBody({ enabled: true, effort: "low" }), { chat_template_kwargs: { enable_thinking: true }, reasoning_effort: "low" });
  assert.deepEqual(toLogprobsBody({ top: 0 }, "chat"), { logprobs: true, top_logprobs: 1 });
  assert.deepEqual(toLogprobsBody({ top: 5 }, "completion"), { n_probs: 5 });
  assert.deepEqual(toLogprobsBody(undefined, "chat"), {});
  assert.deepEqual(toSamplingBody({ logitBias: [[3, -100], [9, 2.5]] }, 10).logit_bias, [[3, -100], [9, 2.5]]);
  assert.equal(toSamplingBody({}, 10).logit_bias, undefined);
});
