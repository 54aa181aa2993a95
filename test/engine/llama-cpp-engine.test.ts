/**
 * The node-llama-cpp engine on its own, with real inference on the scripted fixture models: what the HTTP tests
 * cannot see directly (usage counters, estimates, unloading, validation of structured output, abort).
 */
import assert from "node:assert/strict";
import { rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { InvalidModelFileError, StructuredOutputError } from "../../src/domain/errors.js";
import type { CompletionRequest } from "../../src/domain/chat.js";
import type { GenerationEvent } from "../../src/domain/generation.js";
import type { LoadedModel } from "../../src/engine/engine.js";
import { LlamaCppEngine } from "../../src/engine/llama-cpp/llama-cpp-engine.js";
import { ensureFixtures, INVALID_UTF8_MODEL, INVALID_UTF8_TEXT, JSON_REPLY, SCRIPTED_REPLY, splitReply, TOOL_ANSWER, TOOL_CALL, writeScriptedModel, type FixturePaths } from "../fixtures/models.js";
import { chatRequest, collect } from "../helpers/engine-events.js";

const engine = new LlamaCppEngine({ gpu: "off" });
let fixtures: FixturePaths;
let chat: LoadedModel;

before(async () => {
  fixtures = await ensureFixtures();
  chat = await engine.load({ modelPath: fixtures.chat, contextSize: 1024, slots: 2, threads: 1 });
});

after(async () => {
  await chat.unload();
  await engine.close();
});

test("chat yields the scripted reply, then one done event with usage", async () => {
  const { text, events } = await collect(chat.chat(chatRequest(), new AbortController().signal));
  assert.equal(text, SCRIPTED_REPLY);
  const done = events.at(-1);
  assert.equal(done?.type, "done");
  assert.equal(events.filter((e) => e.type === "done").length, 1);
  if (done?.type !== "done") return;
  assert.equal(done.reason, "stop");
  assert.ok(done.usage.evalDurationNs > 0);
  assert.equal(done.usage.completionTokens, splitReply(SCRIPTED_REPLY).length + 1, "the reply's tokens and the end token, as Ollama counts");
});

test("maxTokens ends with reason length, and two slots generate at once", async () => {
  const signal = new AbortController().signal;
  const [a, b] = await Promise.all([
    collect(chat.chat(chatRequest({ sampling: { temperature: 0, maxTokens: 2 } }), signal)),
    collect(chat.chat(chatRequest({ sampling: { temperature: 0.8, seed: 7 } }), signal)),
  ]);
  assert.ok(SCRIPTED_REPLY.startsWith(a.text) && a.text.length < SCRIPTED_REPLY.length);
  const last = a.events.at(-1);
  assert.ok(last?.type === "done" && last.reason === "length");
  assert.equal(b.text, SCRIPTED_REPLY);
});

test("a raw completion returns its context tokens only when templated", async () => {
  const raw = await collect(chat.complete({ prompt: "hi", raw: true, format: { type: "text" }, sampling: { temperature: 0 } }, new AbortController().signal));
  const templated = await collect(chat.complete({ prompt: "hi", raw: false, format: { type: "text" }, sampling: { temperature: 0 } }, new AbortController().signal));
  assert.equal(templated.text, SCRIPTED_REPLY);
  const rawDone = raw.events.at(-1);
  const templatedDone = templated.events.at(-1);
  assert.ok(rawDone?.type === "done" && rawDone.context === undefined);
  assert.ok(templatedDone?.type === "done" && Array.isArray(templatedDone.context) && templatedDone.context.length > 0);
});

test("aborting stops generation early", async () => {
  const controller = new AbortController();
  const events: GenerationEvent[] = [];
  for await (const event of chat.chat(chatRequest(), controller.signal)) {
    events.push(event);
    controller.abort();
  }
  assert.ok(events.filter((e) => e.type === "text").length < SCRIPTED_REPLY.split(" ").length);
});

test("embeddings are L2-normalised and honour dimensions", async () => {
  const result = await chat.embed({ inputs: ["hello", "world"], truncate: true, dimensions: 8 }, new AbortController().signal);
  assert.equal(result.embeddings.length, 2);
  for (const vector of result.embeddings) {
    assert.equal(vector.length, 8);
    assert.ok(Math.abs(Math.hypot(...vector) - 1) < 1e-6);
  }
  assert.ok(result.promptTokens > 0);
});

test("JSON-schema output is constrained, and output that breaks the schema is refused", async () => {
  const json = await engine.load({ modelPath: fixtures.json, contextSize: 512, slots: 1, threads: 1 });
  try {
    const schema = { type: "object", properties: { name: { type: "string" }, age: { type: "integer" } }, required: ["name", "age"] };
    const ok = await collect(json.chat(chatRequest({ format: { type: "json_schema", schema } }), new AbortController().signal));
    assert.deepEqual(JSON.parse(ok.text), JSON.parse(JSON_REPLY));
    // The model can only say age 36; a schema demanding age >= 40 cannot be met, and must not be returned as if it were.
    const strict = { ...schema, properties: { ...schema.properties, age: { type: "integer", minimum: 40 } } };
    await assert.rejects(collect(json.chat(chatRequest({ format: { type: "json_schema", schema: strict } }), new AbortController().signal)), StructuredOutputError);
  } finally {
    await json.unload();
  }
});

test("tools produce a tool call, and the tool result produces the answer", async () => {
  const tools = await engine.load({ modelPath: fixtures.toolCall, contextSize: 1024, slots: 1, threads: 1 });
  try {
    const definition = { name: TOOL_CALL.name, description: "Weather in a city", parameters: { type: "object", properties: { city: { type: "string" } } } };
    // A format alongside tools cannot be enforced (one grammar at a time): the tools win and nothing fails.
    const format = { type: "json_schema" as const, schema: { type: "object", properties: { x: { type: "number" } }, required: ["x"] } };
    const first = await collect(tools.chat(chatRequest({ messages: [{ role: "user", content: "Weather in Paris?" }], tools: [definition], format }), new AbortController().signal));
    const call = first.events.find((e) => e.type === "tool_call");
    assert.deepEqual(call?.type === "tool_call" && { name: call.call.name, arguments: call.call.arguments }, { name: TOOL_CALL.name, arguments: TOOL_CALL.params });
    const second = await collect(
      tools.chat(
        chatRequest({
          messages: [
            { role: "user", content: "Weather in Paris?" },
            { role: "assistant", content: "", toolCalls: [{ name: TOOL_CALL.name, arguments: { ...TOOL_CALL.params } }] },
            { role: "tool", content: '{"forecast": "sunny"}' },
          ],
          tools: [definition],
          format,
        }),
        new AbortController().signal,
      ),
    );
    assert.equal(second.text, TOOL_ANSWER);
  } finally {
    await tools.unload();
  }
});

test("estimateMemory predicts at least the weights, and load refuses a hostile header before llama.cpp sees it", async () => {
  const estimate = await engine.estimateMemory({ modelPath: fixtures.chat, contextSize: 1024, slots: 1, threads: 1 });
  assert.ok(estimate.ram + estimate.vram > 0);
  const hostile = path.join(os.tmpdir(), `ai-server-hostile-${process.pid}.gguf`);
  const header = Buffer.alloc(24);
  header.write("GGUF", 0, "latin1");
  header.writeUInt32LE(3, 4);
  header.writeBigUInt64LE(0xffffffffffn, 8); // a trillion tensors in a 24-byte file
  await writeFile(hostile, header);
  await assert.rejects(engine.load({ modelPath: hostile, contextSize: 512, slots: 1, threads: 1 }), InvalidModelFileError);
});

test("speculative decoding (draft model, prompt lookup) changes nothing in the output and counts accepted guesses", async () => {
  for (const speculative of [{ type: "draft" as const, modelPath: fixtures.chat }, { type: "lookup" as const }]) {
    const model = await engine.load({ modelPath: fixtures.chat, contextSize: 512, slots: 1, threads: 1, speculative });
    try {
      const { text } = await collect(model.chat(chatRequest(), new AbortController().signal));
      assert.equal(text, SCRIPTED_REPLY, speculative.type);
      const { drafted, accepted } = model.stats().speculative;
      assert.ok(accepted <= drafted);
      if (speculative.type === "draft") assert.ok(accepted > 0, "a perfect draft has guesses accepted");
    } finally {
      await model.unload();
    }
  }
});

test("the completion count is every token generated, also when generation stops inside a UTF-8 character", async () => {
  // "Hello Caf" then the three bytes of "你" as byte tokens: 4 tokens end after two of its bytes, which
  // node-llama-cpp holds back from its token callback (an incomplete character).
  const file = path.join(os.tmpdir(), `ai-server-utf8-${process.pid}.gguf`);
  await writeScriptedModel(file, { reply: "Hello Caf", transitions: [["▁Caf", "<0xE4>"], ["<0xE4>", "<0xBD>"], ["<0xBD>", "<0xA0>"], ["<0xA0>", "<|im_end|>"]] });
  const model = await engine.load({ modelPath: file, contextSize: 256, slots: 1, threads: 1 });
  try {
    for (const [maxTokens, reason] of [[4, "length"], [5, "length"], [10, "stop"]] as const) {
      const { text, events } = await collect(model.chat(chatRequest({ sampling: { temperature: 0, maxTokens } }), new AbortController().signal));
      const done = events.at(-1);
      assert.ok(done?.type === "done", `${maxTokens}: ends with done`);
      assert.equal(done.reason, reason, `${maxTokens}: ${text}`);
      // Ended by the model, the end token counts too (as in Ollama's eval_count).
      assert.equal(done.usage.completionTokens, reason === "stop" ? 6 : maxTokens, `${maxTokens}: completion tokens of ${JSON.stringify(text)}`);
    }
  } finally {
    await model.unload();
    await rm(file, { force: true });
  }
});

test("output bytes that are not UTF-8 arrive as U+FFFD, as from the llama-server engine", async () => {
  const file = path.join(os.tmpdir(), `ai-server-utf8-bad-${process.pid}.gguf`);
  await writeScriptedModel(file, INVALID_UTF8_MODEL);
  const model = await engine.load({ modelPath: file, contextSize: 256, slots: 1, threads: 1 });
  try {
    const { text, events } = await collect(model.chat(chatRequest(), new AbortController().signal));
    assert.equal(text, INVALID_UTF8_TEXT);
    assert.ok(events.at(-1)?.type === "done");
  } finally {
    await model.unload();
    await rm(file, { force: true });
  }
});

test("sequences decoded in one batch each sample from their own logits (greedy output equals the same prompt alone)", async () => {
  // node-llama-cpp samples a batch's sequences on parallel worker threads while llama.cpp puts out-of-order output
  // rows back in order on first read, without a lock; without the engine's ordering, about 2% of these generations
  // took another sequence's tokens (23 of 1200 here).
  const promptOf = (k: number): string => `story ${k % 8} about ${"abcdefgh".charAt(k % 8)} city`;
  const prompts = Array.from({ length: 8 }, (_, k) => promptOf(k));
  const request = (prompt: string): CompletionRequest => ({ prompt, raw: true, format: { type: "text" }, sampling: { temperature: 0, maxTokens: 16 } });
  const generate = async (model: LoadedModel, prompt: string): Promise<string> => (await collect(model.complete(request(prompt), new AbortController().signal))).text;
  const alone = await engine.load({ modelPath: fixtures.tiny, contextSize: 512, slots: 1, threads: 1 });
  const expected = new Map<string, string>();
  try {
    for (const prompt of prompts) expected.set(prompt, await generate(alone, prompt));
  } finally {
    await alone.unload();
  }
  const batched = await engine.load({ modelPath: fixtures.tiny, contextSize: 2048, slots: 4, threads: 1 });
  try {
    const wrong: string[] = [];
    for (let round = 0; round < 100; round++) {
      const chosen = Array.from({ length: 4 }, (_, i) => promptOf(round + i * 3));
      const texts = await Promise.all(chosen.map((prompt) => generate(batched, prompt)));
      texts.forEach((text, i) => {
        if (text !== expected.get(chosen[i] ?? "")) wrong.push(`round ${round}, ${JSON.stringify(chosen[i])}: ${JSON.stringify(text)}`);
      });
    }
    assert.deepEqual(wrong, []);
    assert.ok((batched.stats().batching?.multiSequence ?? 0) > 100, JSON.stringify(batched.stats().batching));
  } finally {
    await batched.unload();
  }
});
