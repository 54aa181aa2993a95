/**
 * `logprobs` / `top_logprobs` on /api/chat and /api/generate with REAL inference on each engine (llama.cpp's
 * llama-server, the product engine, and node-llama-cpp in process), driven by the `ollama` npm client. The scripted fixture puts a logit margin of about 50 on each
 * next token of its reply, so every generated token is certain (log-probability ~0), its tokens spell the reply, and
 * it is the first of its step's alternatives.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Ollama, type Logprob } from "ollama";
import { ensureFixtures, SCRIPTED_REPLY } from "../fixtures/models.js";
import { createModel, postJson, readNdjson, type TestServer, startEngineServer } from "../helpers/start-server.js";

const hi = [{ role: "user", content: "Hi" }];

/** Ollama's entry: the token, its log-probability and UTF-8 bytes, and `top` alternatives (absent when none were asked). */
function assertEntries(entries: readonly Logprob[] | undefined, top: number): void {
  assert.ok(entries && entries.length > 0, "log-probabilities are returned");
  assert.equal(entries.map((e) => e.token).join(""), SCRIPTED_REPLY, "the tokens spell the reply");
  for (const entry of entries as Array<Logprob & { bytes?: number[] }>) {
    assert.ok(entry.logprob <= 0 && entry.logprob > -0.01, `${JSON.stringify(entry.token)} is certain: ${entry.logprob}`);
    assert.deepEqual(entry.bytes, [...Buffer.from(entry.token, "utf8")]);
    if (top === 0) {
      assert.equal(entry.top_logprobs, undefined);
      continue;
    }
    assert.equal(entry.top_logprobs?.length, top);
    assert.equal(entry.top_logprobs?.[0]?.token, entry.token, "the chosen token leads its alternatives");
    const scores = entry.top_logprobs?.map((t) => t.logprob) ?? [];
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a), "alternatives from most to least likely");
  }
}

for (const engine of ["llama-server", "llama-cpp"] as const) {
  describe(`engine ${engine}`, () => {
    let server: TestServer;
    let ollama: Ollama;

    before(async () => {
      const fixtures = await ensureFixtures();
      server = await startEngineServer(engine);
      ollama = new Ollama({ host: server.baseUrl });
      await createModel(server.baseUrl, "scripted", fixtures.chat);
    });
    after(() => server?.close());

    test("chat, stream:false: every token's log-probability, with top_logprobs alternatives", async () => {
      const response = await ollama.chat({ model: "scripted", messages: hi, logprobs: true, top_logprobs: 3, options: { temperature: 0 } });
      assert.equal(response.message.content, SCRIPTED_REPLY);
      assertEntries(response.logprobs, 3);
    });

    test("chat, streamed: each chunk's logprobs spell that chunk's content", async () => {
      const parts = [];
      for await (const part of await ollama.chat({ model: "scripted", messages: hi, logprobs: true, top_logprobs: 1, stream: true, options: { temperature: 0 } })) parts.push(part);
      for (const part of parts.filter((p) => p.message.content !== "")) {
        assert.equal(part.logprobs?.map((e) => e.token).join(""), part.message.content);
      }
      assertEntries(parts.flatMap((p) => p.logprobs ?? []), 1);
    });

    test("generate: logprobs streamed and collected; without top_logprobs, no alternatives", async () => {
      const whole = await ollama.generate({ model: "scripted", prompt: "Hi", logprobs: true, options: { temperature: 0 } });
      assert.equal(whole.response, SCRIPTED_REPLY);
      assertEntries(whole.logprobs, 0);

      const lines = await readNdjson(await postJson(server.baseUrl, "/api/generate", { model: "scripted", prompt: "Hi", logprobs: true, top_logprobs: 2, options: { temperature: 0 } }));
      for (const line of lines.filter((l) => l.response !== "")) {
        assert.equal((line.logprobs as Logprob[]).map((e) => e.token).join(""), line.response);
      }
      assertEntries(lines.flatMap((l) => (l.logprobs as Logprob[] | undefined) ?? []), 2);
    });

    test("without logprobs (or with logprobs:false), no logprobs field at all", async () => {
      for (const extra of [{}, { logprobs: false, top_logprobs: 3 }]) {
        const chat = (await (await postJson(server.baseUrl, "/api/chat", { model: "scripted", messages: hi, stream: false, ...extra })).json()) as Record<string, unknown>;
        assert.equal(chat.logprobs, undefined, JSON.stringify(extra));
        const lines = await readNdjson(await postJson(server.baseUrl, "/api/generate", { model: "scripted", prompt: "Hi", ...extra }));
        for (const line of lines) assert.equal("logprobs" in line, false, JSON.stringify(line));
      }
    });

    test("top_logprobs outside 0–20 is a 400 before anything runs", async () => {
      for (const route of ["/api/chat", "/api/generate"]) {
        const response = await postJson(server.baseUrl, route, { model: "scripted", messages: hi, prompt: "Hi", logprobs: true, top_logprobs: 21 });
        assert.equal(response.status, 400);
        assert.deepEqual(await response.json(), { error: "top_logprobs: must be between 0 and 20" });
      }
    });
  });
}
