/**
 * The llama-server engine against the whole domain contract, with real inference in a real llama-server on the
 * scripted fixtures: tool choice (each value, named enforced), several calls in one reply, reasoning split from the
 * answer (chat and templated completions), log-probabilities, logit bias, usage with cached tokens, truncation and
 * context shift, tokenize/detokenize, embeddings of token ids, rerank. One thread per process.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import http from "node:http";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { CompletionRequest, Message, ToolDefinition } from "../../src/domain/chat.js";
import { CapabilityError, ContextOverflowError, InvalidRequestError } from "../../src/domain/errors.js";
import type { GenerationEvent, TokenLogprob } from "../../src/domain/generation.js";
import type { LoadSpec } from "../../src/engine/engine.js";
import { ServerClient } from "../../src/engine/llama-server/client.js";
import { runGeneration } from "../../src/engine/llama-server/generation.js";
import { LlamaServerEngine } from "../../src/engine/llama-server/llama-server-engine.js";
import type { LlamaServerModel } from "../../src/engine/llama-server/loaded-model.js";
import {
  ensureFixtures,
  PARALLEL_TOOL_CALLS,
  RERANK_DOCUMENTS,
  RERANK_ORDER,
  RERANK_QUERY,
  RERANK_SCORES,
  SCRIPTED_REPLY,
  splitReply,
  THINKING_ANSWER,
  THINKING_REASONING,
  TOOL_ANSWER,
  type FixturePaths,
} from "../fixtures/models.js";
import { chatRequest, collect } from "../helpers/engine-events.js";
import { buildLlamaServer } from "../helpers/llama-server-binary.js";

let engine: LlamaServerEngine;
let fixtures: FixturePaths;
const never = new AbortController().signal;

before(async () => {
  engine = new LlamaServerEngine({ binary: buildLlamaServer(), gpu: "off" });
  fixtures = await ensureFixtures();
});

after(async () => {
  await engine?.close();
});

function spec(modelPath: string, overrides: Partial<LoadSpec> = {}): LoadSpec {
  return { modelPath, contextSize: 1024, slots: 1, threads: 1, ...overrides };
}

function completion(overrides: Partial<CompletionRequest> = {}): CompletionRequest {
  return { prompt: "hi", raw: false, format: { type: "text" }, sampling: { temperature: 0 }, ...overrides };
}

/** Loads a model for the tests of one describe block and unloads it after them. */
function loaded(path: () => string, overrides: Partial<LoadSpec> = {}): () => LlamaServerModel {
  let model: LlamaServerModel | undefined;
  before(async () => {
    model = (await engine.load(spec(path(), overrides))) as LlamaServerModel;
  });
  after(async () => {
    await model?.unload();
  });
  return () => model!;
}

const of = <T extends GenerationEvent["type"]>(events: GenerationEvent[], type: T): Extract<GenerationEvent, { type: T }>[] =>
  events.filter((e): e is Extract<GenerationEvent, { type: T }> => e.type === type);

function done(events: GenerationEvent[]): Extract<GenerationEvent, { type: "done" }> {
  const last = events.at(-1);
  assert.ok(last?.type === "done", "the stream ends with done");
  return last;
}

const cityParameters = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
const tools: ToolDefinition[] = PARALLEL_TOOL_CALLS.map(({ name }) => ({ name, description: `${name} of a city`, parameters: cityParameters }));

describe("tools (qwenParallelTools: both calls in one reply)", () => {
  const model = loaded(() => fixtures.qwenParallelTools);
  const calls = (events: GenerationEvent[]): [string, unknown][] => of(events, "tool_call").map((e) => [e.call.name, e.call.arguments]);
  const expected = PARALLEL_TOOL_CALLS.map((c): [string, unknown] => [c.name, c.arguments]);

  test("auto (and absent): two tool_call events in reply order, each with its own id, no text", async () => {
    for (const toolChoice of [undefined, { type: "auto" as const }]) {
      const { text, events } = await collect(model().chat(chatRequest({ tools, ...(toolChoice && { toolChoice }) }), never));
      assert.deepEqual(calls(events), expected);
      assert.equal(new Set(of(events, "tool_call").map((e) => e.call.id)).size, 2);
      assert.equal(text, "");
      assert.deepEqual(events.slice(-3).map((e) => e.type), ["tool_call", "tool_call", "done"]);
    }
  });

  test("none: the model's reply comes as text and no call is parsed", async () => {
    const { text, events } = await collect(model().chat(chatRequest({ tools, toolChoice: { type: "none" } }), never));
    assert.equal(of(events, "tool_call").length, 0);
    assert.match(text, /^<tool_call>\n\{"name": "get_weather"/);
  });

  test("required: the calls", async () => {
    const { events } = await collect(model().chat(chatRequest({ tools, toolChoice: { type: "required" } }), never));
    assert.deepEqual(calls(events), expected);
  });

  test("a named function is enforced: the second call, get_time in the script, comes out as get_weather", async () => {
    const { events } = await collect(model().chat(chatRequest({ tools, toolChoice: { type: "function", name: "get_weather" } }), never));
    const names = of(events, "tool_call").map((e) => e.call.name);
    assert.ok(names.length >= 1 && names.every((n) => n === "get_weather"), `calls: ${names.join(", ")}`);
  });

  test("a named function that is not among the tools is refused, naming it", async () => {
    await assert.rejects(collect(model().chat(chatRequest({ tools, toolChoice: { type: "function", name: "get_moon" } }), never)), (error: unknown) => {
      return error instanceof InvalidRequestError && /"get_moon"/.test(error.message);
    });
  });

  test("parallelToolCalls false: only the first call", async () => {
    const { events } = await collect(model().chat(chatRequest({ tools, parallelToolCalls: false }), never));
    assert.deepEqual(calls(events), expected.slice(0, 1));
  });

  test("the results fed back: the answer", async () => {
    const messages: Message[] = [
      { role: "user", content: "Weather and time in Paris?" },
      { role: "assistant", content: "", toolCalls: PARALLEL_TOOL_CALLS.map((c) => ({ name: c.name, arguments: { ...c.arguments } })) },
      { role: "tool", content: '{"weather": "sunny"}', toolName: "get_weather" },
      { role: "tool", content: '{"time": "12:00"}', toolName: "get_time" },
    ];
    const { text, events } = await collect(model().chat(chatRequest({ tools, messages }), never));
    assert.equal(of(events, "tool_call").length, 0);
    assert.ok(text.length > 0 && !text.includes("<tool_call>"), text);
  });

  test("log-probabilities with tools are refused (llama-server does not stream them together)", async () => {
    await assert.rejects(collect(model().chat(chatRequest({ tools, logprobs: { top: 1 } }), never)), InvalidRequestError);
  });
});

describe("thinking (a Qwen3-style template)", () => {
  const model = loaded(() => fixtures.thinking);
  const joined = (events: GenerationEvent[], type: "thinking" | "text"): string => of(events, type).map((e) => e.text).join("");

  /** Reasoning and answer apart, reasoning first, reasoning tokens counted (up to the answer's first token). */
  function assertSplit(events: GenerationEvent[]): void {
    assert.equal(joined(events, "thinking"), THINKING_REASONING);
    assert.equal(joined(events, "text"), THINKING_ANSWER);
    const lastThought = events.findLastIndex((e) => e.type === "thinking");
    const firstText = events.findIndex((e) => e.type === "text");
    assert.ok(lastThought < firstText, "all reasoning before the answer");
    const { usage } = done(events);
    // <think>\n, the reasoning's tokens, \n</think>\n\n and the blank line the script writes before the answer.
    assert.equal(usage.reasoningTokens, splitReply(THINKING_REASONING).length + 3);
    assert.equal(usage.completionTokens, (usage.reasoningTokens ?? 0) + splitReply(THINKING_ANSWER).length + 1);
  }

  function assertNoThinking(events: GenerationEvent[]): void {
    assert.equal(of(events, "thinking").length, 0);
    assert.equal(joined(events, "text"), THINKING_ANSWER);
    assert.equal(done(events).usage.reasoningTokens, undefined);
  }

  test("chat: the model's default thinks; reasoning comes as thinking events, never in the text", async () => {
    assertSplit((await collect(model().chat(chatRequest(), never))).events);
    assertSplit((await collect(model().chat(chatRequest({ thinking: { enabled: true, effort: "high" } }), never))).events);
  });

  test("chat: thinking off renders the template's empty think block: the answer alone", async () => {
    assertNoThinking((await collect(model().chat(chatRequest({ thinking: { enabled: false } }), never))).events);
  });

  test("chat with tools the model does not call: thinking events, then text", async () => {
    const { events } = await collect(model().chat(chatRequest({ tools }), never));
    assertSplit(events);
    assert.equal(of(events, "tool_call").length, 0);
  });

  test("templated completion: split by its markers; thinking off; its context works as a follow-up", async () => {
    const first = await collect(model().complete(completion(), never));
    assertSplit(first.events);
    const context = done(first.events).context;
    assert.ok(context && context.length > 0);
    assertSplit((await collect(model().complete(completion({ prompt: "again", context }), never))).events);
    assertNoThinking((await collect(model().complete(completion({ thinking: { enabled: false } }), never))).events);
  });

  test("a raw completion is not split", async () => {
    const { text, events } = await collect(model().complete(completion({ raw: true, prompt: "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n" }), never));
    assert.equal(of(events, "thinking").length, 0);
    assert.ok(text.includes("</think>") && text.endsWith(THINKING_ANSWER), text);
  });
});

describe("chat fixture: log-probabilities, logit bias, usage, tokens, embeddings", () => {
  const model = loaded(() => fixtures.chat);
  const replyTokens = splitReply(SCRIPTED_REPLY);

  function assertLogprobs(events: GenerationEvent[], top: number): TokenLogprob[] {
    const texts = of(events, "text");
    const all = texts.flatMap((e) => e.logprobs ?? []);
    for (const e of texts) assert.equal(e.logprobs?.map((l) => l.token).join(""), e.text, "each text event carries its own tokens");
    assert.deepEqual(all.map((l) => l.token), replyTokens);
    for (const l of all) {
      assert.ok(l.logprob <= 0 && l.logprob > -0.01, `the scripted token ${JSON.stringify(l.token)} is near certain: ${l.logprob}`);
      assert.deepEqual(l.bytes, [...Buffer.from(l.token)]);
      assert.equal(l.top.length, top);
      if (top > 0) {
        assert.equal(l.top[0]?.token, l.token);
        assert.ok((l.top[1]?.logprob ?? 0) < -10, "the runner-up is far behind");
      }
    }
    return all;
  }

  test("chat: each text event carries its tokens' log-probabilities (natural log) and the top candidates", async () => {
    assertLogprobs((await collect(model().chat(chatRequest({ logprobs: { top: 3 } }), never))).events, 3);
    const without = await collect(model().chat(chatRequest(), never));
    assert.ok(of(without.events, "text").every((e) => e.logprobs === undefined));
  });

  test("completions (templated, raw) too; top 0 gives the chosen token alone", async () => {
    assertLogprobs((await collect(model().complete(completion({ logprobs: { top: 2 } }), never))).events, 2);
    assertLogprobs((await collect(model().complete(completion({ raw: true, logprobs: { top: 0 } }), never))).events, 0);
  });

  test("logit bias: a ban on the reply's first token changes the reply; a JSON-format chat too", async () => {
    const reply = await collect(model().complete(completion(), never));
    const context = done(reply.events).context ?? [];
    const firstId = context.at(-(replyTokens.length + 1)); // the reply's tokens and the end token close the context
    assert.ok(firstId !== undefined);
    const banned = await collect(model().chat(chatRequest({ sampling: { temperature: 0, logitBias: [[firstId, -100]], maxTokens: 5 } }), never));
    assert.ok(!banned.text.startsWith("Hello"), `banned: ${JSON.stringify(banned.text)}`);
    const neutral = await collect(model().chat(chatRequest({ sampling: { temperature: 0, logitBias: [[firstId, 0]] } }), never));
    assert.equal(neutral.text, SCRIPTED_REPLY);
  });

  test("usage: promptTokens counts every prompt token; a repeated prompt reports the cached ones", async () => {
    const request = chatRequest({ messages: [{ role: "user", content: "Tell me a story about the weather in Paris" }] });
    const first = done((await collect(model().chat(request, never))).events).usage;
    const second = done((await collect(model().chat(request, never))).events).usage;
    assert.ok(first.promptTokens > 10);
    assert.equal(second.promptTokens, first.promptTokens, "all prompt tokens, cached or not");
    assert.ok((second.cachedTokens ?? 0) >= first.promptTokens - 2, `cached ${second.cachedTokens} of ${second.promptTokens}`);
    assert.ok((second.cachedTokens ?? 0) > (first.cachedTokens ?? 0));
  });

  test("tokenize gives ids and pieces (part of a character as U+FFFD); detokenize inverts it; unknown ids are refused", async () => {
    const tokens = await model().tokenize({ text: "Hello world €", addSpecial: true, parseSpecial: true }, never);
    assert.equal(tokens[0]?.piece, "<s>", "the start token with addSpecial");
    const euro = tokens.slice(-3);
    assert.deepEqual(euro.map((t) => t.piece), ["\uFFFD", "\uFFFD", "\uFFFD"], "€ in three byte tokens");
    const body = tokens.slice(1);
    assert.equal(await model().detokenize(body.map((t) => t.id), never), " Hello world €");
    assert.equal(body.slice(0, -3).map((t) => t.piece).join(""), " Hello world ");
    const plain = await model().tokenize({ text: "<|im_start|>", addSpecial: false, parseSpecial: false }, never);
    const special = await model().tokenize({ text: "<|im_start|>", addSpecial: false, parseSpecial: true }, never);
    assert.equal(special.length, 1);
    assert.ok(plain.length > 1, "as plain text without parseSpecial");
    for (const bad of [[999_999], [-1], [1.5]]) await assert.rejects(model().detokenize(bad, never), InvalidRequestError);
    assert.equal(await model().detokenize([], never), "");
  });

  test("embeddings of token ids equal those of the text; long ids fail unless truncated; unknown ids are refused", async () => {
    const text = "Tell me a story";
    const ids = (await model().tokenize({ text, addSpecial: true, parseSpecial: true }, never)).map((t) => t.id);
    const { embeddings, promptTokens } = await model().embed({ inputs: [text, ids], truncate: true }, never);
    assert.equal(promptTokens, ids.length * 2);
    embeddings[0]!.forEach((v, i) => assert.ok(Math.abs(v - embeddings[1]![i]!) < 1e-5));
    const long = Array.from({ length: 1100 }, () => ids[2]!);
    await assert.rejects(model().embed({ inputs: [long], truncate: false }, never), ContextOverflowError);
    assert.equal((await model().embed({ inputs: [long], truncate: true }, never)).promptTokens, 1024);
    await assert.rejects(model().embed({ inputs: [[1, 999_999]], truncate: true }, never), InvalidRequestError);
  });

  test("rerank on a model without rank pooling is a capability error", async () => {
    await assert.rejects(model().rerank({ query: "q", documents: ["a"] }, never), (error: unknown) => {
      return error instanceof CapabilityError && error.message === '"scripted-chat" does not support rerank';
    });
    assert.equal(model().rerankProcess, undefined, "no process was started for it");
  });
});

test("rerank: a third process with --reranking scores the documents in input order; unload stops it", async () => {
  const model = (await engine.load(spec(fixtures.reranker))) as LlamaServerModel;
  try {
    const { scores, promptTokens } = await model.rerank({ query: RERANK_QUERY, documents: [...RERANK_DOCUMENTS] }, never);
    assert.equal(scores.length, RERANK_SCORES.length);
    scores.forEach((s, i) => assert.ok(Math.abs(s - RERANK_SCORES[i]!) < 1e-3, `document ${i}: ${s}`));
    assert.deepEqual([...scores.keys()].sort((a, b) => scores[b]! - scores[a]!), [...RERANK_ORDER]);
    assert.ok(promptTokens > RERANK_DOCUMENTS.length);
    assert.deepEqual(await model.rerank({ query: RERANK_QUERY, documents: [] }, never), { scores: [], promptTokens: 0 });
  } finally {
    const pid = model.rerankProcess?.pid;
    await model.unload();
    assert.ok(pid !== undefined);
    assert.throws(() => process.kill(pid, 0), "the rerank process is gone");
  }
});

describe("a conversation longer than the context (qwenToolCall, 256 tokens)", () => {
  const model = loaded(() => fixtures.qwenToolCall, { contextSize: 256 });
  // The script answers TOOL_ANSWER instead of its call once `<tool_response>` is in the context: here in the system
  // prompt, so the answer shows that the system prompt survived the truncation.
  const system: Message = { role: "system", content: "<tool_response>" };
  const turn = (text: string): Message[] => [
    { role: "user", content: text },
    { role: "assistant", content: "Hello there" },
  ];

  test("truncate (the default) drops the oldest turns after the system prompt, by the cheap estimate", async () => {
    const messages = [system, ...turn("hello ".repeat(200)), ...turn("say one two three ".repeat(20)), { role: "user" as const, content: "Hi" }];
    const { text, events } = await collect(model().chat(chatRequest({ messages }), never));
    assert.equal(text, TOOL_ANSWER);
    const { usage } = done(events);
    assert.ok(usage.promptTokens < 256, `prompt of ${usage.promptTokens} tokens`);
    await assert.rejects(collect(model().chat(chatRequest({ messages, truncate: false }), never)), ContextOverflowError);
  });

  test("text denser than the estimate: llama-server's refusal makes it measure and truncate", async () => {
    // "€" is three byte tokens: 120 of them pass the estimate (half a token per character) but take 360 tokens.
    const messages = [system, ...turn("€".repeat(120)), { role: "user" as const, content: "Hi" }];
    assert.equal((await collect(model().chat(chatRequest({ messages }), never))).text, TOOL_ANSWER);
    await assert.rejects(collect(model().chat(chatRequest({ messages, truncate: false }), never)), ContextOverflowError);
  });

  test("a last turn that alone does not fit is a context overflow", async () => {
    await assert.rejects(collect(model().chat(chatRequest({ messages: [system, { role: "user", content: "hello ".repeat(300) }] }), never)), ContextOverflowError);
  });
});

test("context shift: by default a reply goes on past the context; shift false stops it at the limit with length", async () => {
  const model = await engine.load(spec(fixtures.tiny, { contextSize: 64 }));
  try {
    const request = chatRequest({ sampling: { temperature: 0 } }); // the tiny random model never ends: n_predict = the context size
    const shifted = done((await collect(model.chat(request, never))).events);
    assert.equal(shifted.reason, "length");
    assert.equal(shifted.usage.completionTokens, 64, "as many tokens as the context holds, the prompt's included");
    const stopped = done((await collect(model.chat({ ...request, shift: false }, never))).events);
    assert.equal(stopped.reason, "length");
    assert.equal(stopped.usage.completionTokens, 64 - stopped.usage.promptTokens);
  } finally {
    await model.unload();
  }
});

test("wire format: reasoning deltas, content and two tool calls become thinking, text and tool_call events, in that order", async () => {
  // A stand-in for llama-server on a socket: no fixture both thinks and calls tools.
  const dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-ls-fake-"));
  const socketPath = path.join(dir, "fake.sock");
  const chunk = (delta: unknown, predicted: number): string =>
    `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: null }], timings: { prompt_n: 3, cache_n: 7, predicted_n: predicted } })}\n\n`;
  const fake = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(chunk({ role: "assistant", content: null }, 1));
      res.write(chunk({ reasoning_content: "Paris" }, 2));
      res.write(chunk({ reasoning_content: " needs two calls" }, 3));
      res.write(chunk({ reasoning_content: ".\n" }, 4));
      res.write(chunk({ content: "Checking." }, 6));
      res.write(chunk({ tool_calls: [{ index: 0, id: "a", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] }, 8));
      res.write(chunk({ tool_calls: [{ index: 1, id: "b", type: "function", function: { name: "get_time", arguments: '{"city":"Paris"}' } }] }, 10));
      const timings = { prompt_n: 3, cache_n: 7, prompt_ms: 1, predicted_n: 11, predicted_ms: 2 };
      res.end(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }], timings })}\n\ndata: [DONE]\n\n`);
    });
  });
  await new Promise<void>((resolve) => fake.listen(socketPath, resolve));
  try {
    const client = new ServerClient(socketPath, async () => undefined);
    const { events } = await collect(runGeneration(client, async () => ({ route: "/v1/chat/completions", body: {}, format: { type: "text" } }), never, () => {}));
    assert.deepEqual(events, [
      { type: "thinking", text: "Paris" },
      { type: "thinking", text: " needs two calls" },
      { type: "thinking", text: "." },
      { type: "text", text: "Checking." },
      { type: "tool_call", call: { id: "a", name: "get_weather", arguments: { city: "Paris" } } },
      { type: "tool_call", call: { id: "b", name: "get_time", arguments: { city: "Paris" } } },
      {
        type: "done",
        reason: "stop",
        usage: { promptTokens: 10, cachedTokens: 7, completionTokens: 11, reasoningTokens: 5, promptDurationNs: 1e6, evalDurationNs: 2e6 },
      },
    ]);
  } finally {
    await new Promise((resolve) => fake.close(resolve));
    await rm(dir, { recursive: true, force: true });
  }
});
