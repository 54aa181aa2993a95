/**
 * The node-llama-cpp engine on token level, with real inference on the scripted fixture models: tokenize and
 * detokenize, token ids as input (checked against the vocabulary), logit bias, log-probabilities, and reranking.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { CapabilityError, ContextOverflowError, InvalidRequestError, RequestCancelledError } from "../../src/domain/errors.js";
import type { GenerationEvent, TokenLogprob } from "../../src/domain/generation.js";
import type { LoadedModel } from "../../src/engine/engine.js";
import { LlamaCppEngine } from "../../src/engine/llama-cpp/llama-cpp-engine.js";
import {
  ensureFixtures,
  INVALID_UTF8_MODEL,
  RERANK_DOCUMENTS,
  RERANK_QUERY,
  RERANK_SCORES,
  SCRIPTED_REPLY,
  splitReply,
  THINKING_ANSWER,
  THINKING_REASONING,
  writeScriptedModel,
  type FixturePaths,
} from "../fixtures/models.js";
import { chatRequest, collect } from "../helpers/engine-events.js";

const engine = new LlamaCppEngine({ gpu: "off" });
let fixtures: FixturePaths;
let chat: LoadedModel;

const signal = (): AbortSignal => new AbortController().signal;
const logprobsOf = (events: GenerationEvent[]): TokenLogprob[] => events.flatMap((e) => (e.type === "text" ? e.logprobs ?? [] : []));
const refusal = (message: string | RegExp, type: new (...args: never[]) => Error = InvalidRequestError) => (error: unknown): boolean => {
  assert.ok(error instanceof type, `${String(error)} is a ${type.name}`);
  if (typeof message === "string") assert.equal(error.message, message);
  else assert.match(error.message, message);
  return true;
};

before(async () => {
  fixtures = await ensureFixtures();
  chat = await engine.load({ modelPath: fixtures.chat, contextSize: 256, slots: 1, threads: 1 });
});

after(async () => {
  await chat.unload();
  await engine.close();
});

test("tokenize gives ids and pieces; special text becomes special tokens only when asked, BOS only with addSpecial", async () => {
  const special = await chat.tokenize({ text: "Hello<|im_end|>", addSpecial: true, parseSpecial: true }, signal());
  assert.deepEqual(special.at(0), { id: 1, piece: "<s>" }, "BOS first, as the vocabulary adds it to a prompt");
  assert.deepEqual(special.at(-1), { id: 4, piece: "<|im_end|>" });
  assert.equal(special.map((t) => t.piece).join(""), "<s> Hello<|im_end|>");
  const plain = await chat.tokenize({ text: "Hello<|im_end|>", addSpecial: false, parseSpecial: false }, signal());
  assert.ok(plain.every((t) => t.id !== 1 && t.id !== 4), "neither BOS nor the special token");
  assert.equal(plain.map((t) => t.piece).join(""), " Hello<|im_end|>");
  // Pieces keep their leading space (SentencePiece's "▁"), as llama-server's with_pieces shows them.
  assert.equal(plain[0]?.piece, " Hello");
});

test("detokenize joins the tokens' pieces; an id outside the vocabulary is refused by name", async () => {
  const tokens = await chat.tokenize({ text: "Hello world", addSpecial: true, parseSpecial: false }, signal());
  assert.equal(await chat.detokenize(tokens.map((t) => t.id), signal()), "<s> Hello world");
  assert.equal(await chat.detokenize([], signal()), "");
  for (const id of [99_999, -1, 1.5]) {
    await assert.rejects(chat.detokenize([1, id], signal()), refusal(`detokenize: token id ${id} is not in the model's vocabulary (ids 0 to 1358)`));
  }
});

test("embedding token ids equals embedding their text; ids outside the vocabulary are refused", async () => {
  const tokens = await chat.tokenize({ text: "hello world", addSpecial: false, parseSpecial: false }, signal());
  const ids = tokens.map((t) => t.id);
  const result = await chat.embed({ inputs: ["hello world", ids], truncate: true }, signal());
  assert.deepEqual(result.embeddings[1], result.embeddings[0]);
  assert.equal(result.promptTokens, 2 * ids.length);
  await assert.rejects(chat.embed({ inputs: ["hello", [1, 5000]], truncate: true }, signal()), refusal("input 1: token id 5000 is not in the model's vocabulary (ids 0 to 1358)"));
});

test("an earlier completion's context is checked against the vocabulary", async () => {
  const request = { prompt: "hi", raw: false, context: [1, 70_000], format: { type: "text" as const }, sampling: { temperature: 0 } };
  await assert.rejects(collect(chat.complete(request, signal())), refusal("context: token id 70000 is not in the model's vocabulary (ids 0 to 1358)"));
});

test("logit bias moves tokens: a banned first token is not said, a favoured one is said every time", async () => {
  // The reply's tokens as it says them: "Hello" without SentencePiece's leading space, then "!".
  const tokens = await chat.tokenize({ text: "!Hello", addSpecial: false, parseSpecial: false }, signal());
  const bang = tokens.find((t) => t.piece === "!");
  const hello = tokens.find((t) => t.piece === "Hello");
  assert.ok(hello && bang, JSON.stringify(tokens));
  const banned = await collect(chat.chat(chatRequest({ sampling: { temperature: 0, maxTokens: 3, logitBias: [[hello.id, -100]] } }), signal()));
  // Unbiased, the reply starts with "Hello" (SCRIPTED_REPLY); banned, every other token ties far behind it.
  assert.ok(!banned.text.startsWith("Hello"), JSON.stringify(banned.text));
  const favoured = await collect(chat.chat(chatRequest({ sampling: { temperature: 0, maxTokens: 3, logitBias: [[bang.id, 100]] } }), signal()));
  assert.equal(favoured.text, "!!!");
  await assert.rejects(
    collect(chat.chat(chatRequest({ sampling: { logitBias: [[4, -100]] } }), signal())),
    refusal("logit bias: token 4 ends generation, and a bias on it is not supported by the llama-cpp engine (AI_SERVER_ENGINE=llama-server serves it)"),
  );
  await assert.rejects(
    collect(chat.chat(chatRequest({ sampling: { logitBias: [[123_456, 1]] } }), signal())),
    refusal("logit bias: token id 123456 is not in the model's vocabulary (ids 0 to 1358)"),
  );
});

test("logprobs: each text event carries its tokens, with their log-probabilities and the top alternatives", async () => {
  const { text, events } = await collect(chat.chat(chatRequest({ logprobs: { top: 3 } }), signal()));
  assert.equal(text, SCRIPTED_REPLY);
  for (const event of events) {
    if (event.type !== "text") continue;
    assert.equal(event.logprobs?.map((l) => l.token).join(""), event.text, "one entry per token of the text");
  }
  const entries = logprobsOf(events);
  assert.deepEqual(entries.map((l) => l.token), splitReply(SCRIPTED_REPLY));
  for (const entry of entries) {
    // The script gives its token a logit about 50 above every other: a probability of 1 within float precision.
    assert.ok(entry.logprob <= 0 && entry.logprob > -1e-3, `${entry.token}: ${entry.logprob}`);
    assert.deepEqual(entry.bytes, [...Buffer.from(entry.token, "utf8")]);
    assert.equal(entry.top.length, 3);
    assert.equal(entry.top[0]?.token, entry.token, "the sampled token is the most likely");
    assert.ok((entry.top[1]?.logprob ?? 0) < -40, "the others are some 50 nats behind");
    assert.ok((entry.top[1]?.logprob ?? 0) >= (entry.top[2]?.logprob ?? 0), "most likely first");
  }
  const plain = await collect(chat.chat(chatRequest(), signal()));
  assert.ok(plain.events.every((e) => e.type !== "text" || e.logprobs === undefined), "none unless asked");
  const selectedOnly = logprobsOf((await collect(chat.chat(chatRequest({ logprobs: { top: 0 } }), signal()))).events);
  assert.equal(selectedOnly.length, entries.length);
  assert.ok(selectedOnly.every((l) => l.top.length === 0));
});

test("logprobs of a character split over byte tokens give each token's own byte", async () => {
  const file = path.join(os.tmpdir(), `ai-server-logprob-bytes-${process.pid}.gguf`);
  await writeScriptedModel(file, INVALID_UTF8_MODEL);
  const model = await engine.load({ modelPath: file, contextSize: 256, slots: 1, threads: 1 });
  try {
    const { events } = await collect(model.chat(chatRequest({ logprobs: { top: 1 } }), signal()));
    const euro = events.find((e) => e.type === "text" && e.text.includes("€"));
    assert.ok(euro?.type === "text");
    assert.deepEqual(euro.logprobs?.map((l) => l.bytes), [[0xe2], [0x82], [0xac]]);
    assert.deepEqual(euro.logprobs?.map((l) => l.token), ["\uFFFD", "\uFFFD", "\uFFFD"]);
  } finally {
    await model.unload();
    await rm(file, { force: true });
  }
});

test("logprobs of a raw completion, and of a thinking model's answer (the reasoning has none)", async () => {
  const raw = await collect(chat.complete({ prompt: "hi", raw: true, format: { type: "text" }, sampling: { temperature: 0, maxTokens: 4 }, logprobs: { top: 1 } }, signal()));
  assert.deepEqual(logprobsOf(raw.events).map((l) => l.token).join(""), raw.text);
  assert.equal(logprobsOf(raw.events).length, 4);
  const thinking = await engine.load({ modelPath: fixtures.thinking, contextSize: 512, slots: 1, threads: 1 });
  try {
    const { text, events } = await collect(thinking.chat(chatRequest({ logprobs: { top: 1 } }), signal()));
    assert.equal(events.map((e) => (e.type === "thinking" ? e.text : "")).join(""), THINKING_REASONING);
    assert.equal(text, THINKING_ANSWER);
    assert.equal(logprobsOf(events).map((l) => l.token).join(""), THINKING_ANSWER);
  } finally {
    await thinking.unload();
  }
});

test("rerank scores documents in input order by the model's rank head", async () => {
  const reranker = await engine.load({ modelPath: fixtures.reranker, contextSize: 512, slots: 1, threads: 1 });
  try {
    const result = await reranker.rerank({ query: RERANK_QUERY, documents: [...RERANK_DOCUMENTS] }, signal());
    assert.equal(result.scores.length, RERANK_SCORES.length);
    result.scores.forEach((score, i) => assert.ok(Math.abs(score - (RERANK_SCORES[i] ?? NaN)) < 1e-3, `document ${i}: ${score}`));
    assert.ok(result.promptTokens > RERANK_DOCUMENTS.length * 2);
    assert.deepEqual(await reranker.rerank({ query: RERANK_QUERY, documents: [] }, signal()), { scores: [], promptTokens: 0 });
    await assert.rejects(
      reranker.rerank({ query: RERANK_QUERY, documents: ["short", "hello ".repeat(600)] }, signal()),
      refusal(/^document 1: the query and the document take \d+ tokens, more than the context of 512 holds$/, ContextOverflowError),
    );
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(reranker.rerank({ query: RERANK_QUERY, documents: ["a"] }, aborted.signal), RequestCancelledError);
  } finally {
    await reranker.unload();
  }
});

test("rerank on a model without rank pooling is refused", async () => {
  await assert.rejects(
    chat.rerank({ query: "q", documents: ["d"] }, signal()),
    refusal('"scripted-chat" does not support reranking (its GGUF header declares no rank pooling)', CapabilityError),
  );
});
