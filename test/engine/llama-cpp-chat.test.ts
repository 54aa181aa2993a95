/**
 * The node-llama-cpp engine's chat contract, with real inference on the scripted fixture models: tool choice and
 * parallel calls, thinking, usage (prompt and cached tokens), the context limits (truncate, shift), and the requests
 * it refuses, with their error class and message.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import type { ChatRequest, ToolDefinition } from "../../src/domain/chat.js";
import { ContextOverflowError, InvalidRequestError } from "../../src/domain/errors.js";
import type { GenerationEvent } from "../../src/domain/generation.js";
import type { LoadedModel } from "../../src/engine/engine.js";
import { LlamaCppEngine } from "../../src/engine/llama-cpp/llama-cpp-engine.js";
import {
  ensureFixtures,
  QWEN3_TEMPLATE,
  SCRIPTED_REPLY,
  splitReply,
  THINKING_ANSWER,
  THINKING_REASONING,
  TOOL_CALL,
  writeScriptedModel,
  type FixturePaths,
} from "../fixtures/models.js";
import { chatRequest, collect } from "../helpers/engine-events.js";

const engine = new LlamaCppEngine({ gpu: "off" });
let fixtures: FixturePaths;
let chat: LoadedModel;
let tools: LoadedModel;
let thinking: LoadedModel;

const signal = (): AbortSignal => new AbortController().signal;
const weather: ToolDefinition = { name: TOOL_CALL.name, description: "Weather in a city", parameters: { type: "object", properties: { city: { type: "string" } } } };
/** A tool without parameters: a forced call of it is complete once its name is written. */
const time: ToolDefinition = { name: "get_time", description: "The time now" };
const calls = (events: GenerationEvent[]): { name: string; arguments: Record<string, unknown> }[] =>
  events.flatMap((e) => (e.type === "tool_call" ? [{ name: e.call.name, arguments: e.call.arguments }] : []));
const done = (events: GenerationEvent[]): Extract<GenerationEvent, { type: "done" }> => {
  const last = events.at(-1);
  assert.ok(last?.type === "done", "the stream ends with done");
  return last;
};
const thoughts = (events: GenerationEvent[]): string => events.map((e) => (e.type === "thinking" ? e.text : "")).join("");

before(async () => {
  fixtures = await ensureFixtures();
  chat = await engine.load({ modelPath: fixtures.chat, contextSize: 256, slots: 1, threads: 1 });
  tools = await engine.load({ modelPath: fixtures.toolCall, contextSize: 1024, slots: 1, threads: 1 });
  thinking = await engine.load({ modelPath: fixtures.thinking, contextSize: 512, slots: 1, threads: 1 });
});

after(async () => {
  await chat.unload();
  await tools.unload();
  await thinking.unload();
  await engine.close();
});

test("tool choice none documents the tools, but the reply is text: calls are not parsed", async () => {
  const request = (toolChoice: ChatRequest["toolChoice"], maxTokens: number): ChatRequest =>
    chatRequest({ messages: [{ role: "user", content: "Weather in Paris?" }], tools: [weather], sampling: { temperature: 0, maxTokens }, ...(toolChoice && { toolChoice }) });
  const auto = await collect(tools.chat(request(undefined, 60), signal()));
  assert.deepEqual(calls(auto.events), [{ name: TOOL_CALL.name, arguments: TOOL_CALL.params }]);
  // The model writes its call syntax whatever it is told; with tool choice none that is all the reply is.
  const none = await collect(tools.chat(request({ type: "none" }, 3), signal()));
  assert.deepEqual(calls(none.events), []);
  assert.equal(none.text, `||call: ${TOOL_CALL.name}\n`);
  assert.equal(done(none.events).reason, "length");
});

test("tool choice required makes a model that answers in text call a tool", async () => {
  const auto = await collect(chat.chat(chatRequest({ tools: [time] }), signal()));
  assert.equal(auto.text, SCRIPTED_REPLY);
  assert.deepEqual(calls(auto.events), []);
  const required = await collect(chat.chat(chatRequest({ tools: [time], toolChoice: { type: "required" } }), signal()));
  assert.deepEqual(calls(required.events), [{ name: "get_time", arguments: {} }]);
  assert.equal(required.text, "");
  assert.equal(done(required.events).reason, "stop");
});

test("a named function is the only one offered, and the reply is a call of it", async () => {
  const request = (name: string): ChatRequest =>
    chatRequest({ messages: [{ role: "user", content: "Weather in Paris?" }], tools: [weather, time], toolChoice: { type: "function", name }, sampling: { temperature: 0, maxTokens: 60 } });
  // The model calls get_weather of its own accord; named, get_time is called instead.
  const timeCall = await collect(tools.chat(request("get_time"), signal()));
  assert.deepEqual(calls(timeCall.events), [{ name: "get_time", arguments: {} }]);
  const weatherCall = await collect(tools.chat(request(TOOL_CALL.name), signal()));
  assert.deepEqual(calls(weatherCall.events), [{ name: TOOL_CALL.name, arguments: TOOL_CALL.params }]);
});

test("parallel tool calls false allows one call per reply", async () => {
  // In Qwen's format (node-llama-cpp's Jinja wrapper, which has parallel calls) this script calls again after each call.
  const qwen = await engine.load({ modelPath: fixtures.qwenToolCall, contextSize: 1024, slots: 1, threads: 1 });
  try {
    const request = (parallelToolCalls?: boolean): ChatRequest =>
      chatRequest({ tools: [time], toolChoice: { type: "required" }, sampling: { temperature: 0, maxTokens: 60 }, ...(parallelToolCalls !== undefined && { parallelToolCalls }) });
    const parallel = await collect(qwen.chat(request(), signal()));
    assert.ok(calls(parallel.events).length > 1, `several calls: ${JSON.stringify(calls(parallel.events))}`);
    const single = await collect(qwen.chat(request(false), signal()));
    assert.deepEqual(calls(single.events), [{ name: "get_time", arguments: {} }]);
    assert.equal(done(single.events).reason, "stop");
  } finally {
    await qwen.unload();
  }
});

test("a tool choice the tools cannot meet is refused before the model runs", async () => {
  await assert.rejects(collect(tools.chat(chatRequest({ tools: [weather, time], toolChoice: { type: "function", name: "get_stock" } }), signal())), (error) => {
    assert.ok(error instanceof InvalidRequestError);
    assert.equal(error.message, 'tool choice names the function "get_stock", which is not among the tools ("get_weather", "get_time")');
    return true;
  });
  await assert.rejects(collect(tools.chat(chatRequest({ toolChoice: { type: "required" } }), signal())), (error) => {
    assert.ok(error instanceof InvalidRequestError);
    assert.equal(error.message, 'tool choice "required" needs at least one tool');
    return true;
  });
});

test("a thinking model's reasoning comes apart from its answer; thinking off leaves it out", async () => {
  for (const setting of [undefined, { enabled: true }] as const) {
    const { text, events } = await collect(thinking.chat(chatRequest(setting && { thinking: setting }), signal()));
    assert.equal(thoughts(events), THINKING_REASONING, JSON.stringify(setting));
    assert.equal(text, THINKING_ANSWER, JSON.stringify(setting));
    const reasoning = splitReply(THINKING_REASONING).length;
    const { usage } = done(events);
    assert.ok(usage.reasoningTokens !== undefined && usage.reasoningTokens >= reasoning, JSON.stringify(usage));
    assert.ok(usage.completionTokens > usage.reasoningTokens + splitReply(THINKING_ANSWER).length, JSON.stringify(usage));
    const firstAnswer = events.findIndex((e) => e.type === "text");
    assert.ok(events.slice(firstAnswer).every((e) => e.type !== "thinking"), "the reasoning comes first");
  }
  const off = await collect(thinking.chat(chatRequest({ thinking: { enabled: false } }), signal()));
  assert.equal(thoughts(off.events), "");
  assert.equal(off.text, THINKING_ANSWER);
  assert.equal(done(off.events).usage.reasoningTokens, undefined);
});

test("a templated completion with thinking on separates the reasoning and returns its context", async () => {
  const { text, events } = await collect(
    thinking.complete({ prompt: "hi", raw: false, format: { type: "text" }, sampling: { temperature: 0 }, thinking: { enabled: true } }, signal()),
  );
  assert.equal(thoughts(events), THINKING_REASONING);
  assert.equal(text, THINKING_ANSWER);
  const context = done(events).context;
  assert.ok(Array.isArray(context) && context.length > done(events).usage.promptTokens, "prompt and reply tokens");
});

test("a Jinja template that closes the thought before the reply: thinking on opens it, so the model can reason", async () => {
  // The thinking script in the llama architecture: node-llama-cpp resolves no specialised wrapper for it, only its
  // Jinja wrapper, which renders the reply being generated with Qwen3's empty think block in front.
  const file = path.join(os.tmpdir(), `ai-server-jinja-thinking-${process.pid}.gguf`);
  const pieces = ["<think>\n", ...splitReply(THINKING_REASONING), "\n</think>", "\n\n", ...splitReply(THINKING_ANSWER)];
  await writeScriptedModel(file, { reply: pieces.join(""), pieces, chatTemplate: QWEN3_TEMPLATE, name: "jinja-thinking" });
  const model = await engine.load({ modelPath: file, contextSize: 512, slots: 1, threads: 1 });
  try {
    const byDefault = await collect(model.chat(chatRequest(), signal()));
    assert.equal(thoughts(byDefault.events), "", "node-llama-cpp's default: the empty think block, no reasoning");
    assert.equal(byDefault.text, THINKING_ANSWER);
    const on = await collect(model.chat(chatRequest({ thinking: { enabled: true } }), signal()));
    // The engine opens the thought with the template's "<think>\n"; this script only sees its last token (a newline
    // byte, not its own "<think>\n" piece), so it writes "<think>\n" once more, inside the thought.
    assert.equal(thoughts(on.events), `<think>\n${THINKING_REASONING}`);
    assert.equal(on.text, THINKING_ANSWER);
  } finally {
    await model.unload();
    await rm(file, { force: true });
  }
});

test("thinking on is refused where node-llama-cpp cannot tell reasoning apart, and beside a required tool call", async () => {
  await assert.rejects(collect(chat.chat(chatRequest({ thinking: { enabled: true } }), signal())), (error) => {
    assert.ok(error instanceof InvalidRequestError);
    assert.match(error.message, /^thinking: the llama-cpp engine cannot tell this model's reasoning from its answer .*AI_SERVER_ENGINE=llama-server serves it$/);
    return true;
  });
  await assert.rejects(collect(thinking.chat(chatRequest({ thinking: { enabled: true }, tools: [time], toolChoice: { type: "required" } }), signal())), (error) => {
    assert.ok(error instanceof InvalidRequestError);
    assert.equal(error.message, "a required tool call with thinking on is not supported by the llama-cpp engine (AI_SERVER_ENGINE=llama-server serves it)");
    return true;
  });
});

test("usage counts every prompt token, and those reused from the sequence's cache", async () => {
  const model = await engine.load({ modelPath: fixtures.chat, contextSize: 256, slots: 1, threads: 1 });
  try {
    const rendered = await model.tokenize({ text: "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", addSpecial: true, parseSpecial: true }, signal());
    const first = done((await collect(model.chat(chatRequest(), signal()))).events).usage;
    assert.equal(first.promptTokens, rendered.length);
    assert.equal(first.cachedTokens, 0);
    assert.equal(first.completionTokens, splitReply(SCRIPTED_REPLY).length + 1);
    // The same prompt again: all of it is in the cache but the last token, read again for its logits.
    const again = done((await collect(model.chat(chatRequest(), signal()))).events).usage;
    assert.equal(again.promptTokens, rendered.length);
    assert.equal(again.cachedTokens, rendered.length - 1);
    // The next turn: the previous prompt and reply are reused.
    const next = chatRequest({ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: SCRIPTED_REPLY }, { role: "user", content: "again" }] });
    const followUp = done((await collect(model.chat(next, signal()))).events).usage;
    assert.ok(followUp.promptTokens > rendered.length + splitReply(SCRIPTED_REPLY).length, JSON.stringify(followUp));
    assert.ok(followUp.cachedTokens !== undefined && followUp.cachedTokens >= rendered.length, JSON.stringify(followUp));
    assert.ok(followUp.cachedTokens < followUp.promptTokens);
  } finally {
    await model.unload();
  }
});

test("truncate false refuses a conversation longer than the context; by default its oldest part is dropped", async () => {
  const long = chatRequest({ messages: [{ role: "user", content: "hi ".repeat(200) }] });
  await assert.rejects(collect(chat.chat({ ...long, truncate: false }, signal())), (error) => {
    assert.ok(error instanceof ContextOverflowError);
    assert.match(error.message, /^the conversation takes \d+ tokens, more than the context of 256 holds \(truncation is off\)$/);
    return true;
  });
  const truncated = await collect(chat.chat(long, signal()));
  assert.equal(truncated.text, SCRIPTED_REPLY);
  assert.ok(done(truncated.events).usage.promptTokens < 256);
});

test("shift false stops with length where the context is full; by default the context shifts and the reply goes on", async () => {
  // Two turns that leave room for only part of the reply: shifting drops the first answer.
  const request = (shift?: boolean): ChatRequest =>
    chatRequest({
      messages: [
        { role: "user", content: "hi ".repeat(57) },
        { role: "assistant", content: "hi ".repeat(57) },
        { role: "user", content: "hi" },
      ],
      ...(shift !== undefined && { shift }),
    });
  const stopped = await collect(chat.chat(request(false), signal()));
  assert.equal(done(stopped.events).reason, "length");
  assert.ok(stopped.text.length > 0 && SCRIPTED_REPLY.startsWith(stopped.text) && stopped.text !== SCRIPTED_REPLY, JSON.stringify(stopped.text));
  const { promptTokens, completionTokens } = done(stopped.events).usage;
  // The last token sampled needs no room in the KV cache: the reply ends where the context is full.
  assert.equal(promptTokens + completionTokens, 256, "stopped where node-llama-cpp would shift");
  const shifted = await collect(chat.chat(request(), signal()));
  assert.equal(shifted.text, SCRIPTED_REPLY);
  assert.equal(done(shifted.events).reason, "stop");
});

test("images are refused: node-llama-cpp runs no vision model", async () => {
  await assert.rejects(collect(chat.chat(chatRequest({ messages: [{ role: "user", content: "what is this?", images: ["aGk="] }] }), signal())), (error) => {
    assert.ok(error instanceof InvalidRequestError);
    assert.equal(error.message, "images are not supported by the llama-cpp engine");
    return true;
  });
});
