/**
 * `think` on /api/chat and /api/generate with REAL inference on each engine (llama.cpp's llama-server, the product
 * engine, and node-llama-cpp in process), driven by the `ollama` npm client: the `thinking` fixture reasons in
 * `<think>…</think>` (Qwen3's template) before it answers, so the reasoning must come back apart from the answer —
 * `message.thinking` / `thinking`, streamed as deltas and whole when not streaming — and not at all when thinking is off.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Ollama } from "ollama";
import { ensureFixtures, SCRIPTED_REPLY, THINKING_ANSWER, THINKING_REASONING } from "../fixtures/models.js";
import { createModel, postJson, readNdjson, type TestServer, startEngineServer } from "../helpers/start-server.js";

const hi = [{ role: "user", content: "Hi" }];

for (const engine of ["llama-server", "llama-cpp"] as const) {
  describe(`engine ${engine}`, () => {
    let server: TestServer;
    let ollama: Ollama;

    before(async () => {
      const fixtures = await ensureFixtures();
      server = await startEngineServer(engine);
      ollama = new Ollama({ host: server.baseUrl });
      await createModel(server.baseUrl, "thinker", fixtures.thinking);
      await createModel(server.baseUrl, "scripted", fixtures.chat);
    });
    after(() => server?.close());

    test("the thinking model has the thinking capability", async () => {
      const show = await ollama.show({ model: "thinker" });
      assert.ok(show.capabilities.includes("thinking"), JSON.stringify(show.capabilities));
    });

    test("chat, think:true: the reasoning in message.thinking, the answer in message.content", async () => {
      const response = await ollama.chat({ model: "thinker", messages: hi, think: true, options: { temperature: 0 } });
      assert.equal(response.message.thinking, THINKING_REASONING);
      assert.equal(response.message.content, THINKING_ANSWER);
      assert.equal(response.done_reason, "stop");
    });

    test("chat, streamed: reasoning deltas first, then content deltas; never both in one chunk", async () => {
      const parts = [];
      for await (const part of await ollama.chat({ model: "thinker", messages: hi, think: "high", stream: true, options: { temperature: 0 } })) parts.push(part);
      const thinking = parts.filter((p) => p.message.thinking);
      const content = parts.filter((p) => p.message.content);
      assert.ok(thinking.length > 1, "the reasoning is streamed, not sent whole");
      assert.equal(thinking.map((p) => p.message.thinking).join(""), THINKING_REASONING);
      assert.equal(content.map((p) => p.message.content).join(""), THINKING_ANSWER);
      assert.ok(parts.indexOf(thinking.at(-1)!) < parts.indexOf(content[0]!), "reasoning before the answer");
      for (const part of parts) assert.ok(!(part.message.thinking && part.message.content), JSON.stringify(part));
      assert.equal(parts.at(-1)?.done, true);
    });

    test("chat, think:false: the answer alone, no thinking field", async () => {
      const response = await postJson(server.baseUrl, "/api/chat", { model: "thinker", messages: hi, think: false, stream: false, options: { temperature: 0 } });
      const body = (await response.json()) as { message: Record<string, unknown> };
      assert.deepEqual(body.message, { role: "assistant", content: THINKING_ANSWER });
    });

    test("chat without think: the model's default (this template thinks), reasoning still apart from the answer", async () => {
      const response = await ollama.chat({ model: "thinker", messages: hi, options: { temperature: 0 } });
      assert.equal(response.message.content, THINKING_ANSWER);
      assert.equal(response.message.thinking, THINKING_REASONING);
    });

    test("generate, think:true: `thinking` beside `response`, streamed and whole", async () => {
      const whole = await ollama.generate({ model: "thinker", prompt: "Hi", think: true, options: { temperature: 0 } });
      assert.equal(whole.thinking, THINKING_REASONING);
      assert.equal(whole.response, THINKING_ANSWER);

      const lines = await readNdjson(await postJson(server.baseUrl, "/api/generate", { model: "thinker", prompt: "Hi", think: true, options: { temperature: 0 } }));
      assert.equal(lines.map((l) => l.thinking ?? "").join(""), THINKING_REASONING);
      assert.equal(lines.map((l) => l.response).join(""), THINKING_ANSWER);
      for (const line of lines.filter((l) => l.thinking)) assert.equal(line.response, "", "Ollama sends reasoning beside an empty response");
    });

    test("generate, think:false: the answer alone", async () => {
      const response = await postJson(server.baseUrl, "/api/generate", { model: "thinker", prompt: "Hi", think: false, stream: false, options: { temperature: 0 } });
      const body = (await response.json()) as Record<string, unknown>;
      assert.equal(body.response, THINKING_ANSWER);
      assert.equal("thinking" in body, false);
    });

    test("a model that does not think: think:true or a level is a 400, think:false answers as usual", async () => {
      for (const think of [true, "low", "max"]) {
        for (const route of ["/api/chat", "/api/generate"]) {
          const response = await postJson(server.baseUrl, route, { model: "scripted", messages: hi, prompt: "Hi", think });
          assert.equal(response.status, 400, `${route} ${think}`);
          assert.deepEqual(await response.json(), { error: '"scripted" does not support thinking' });
        }
      }
      const off = await ollama.chat({ model: "scripted", messages: hi, think: false, options: { temperature: 0 } });
      assert.equal(off.message.content, SCRIPTED_REPLY);
      assert.equal(off.message.thinking, undefined);
    });
  });
}
