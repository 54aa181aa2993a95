/**
 * POST /v1/completions end to end with REAL inference on the scripted `chat` fixture (each engine; on the CPU),
 * driven by the official `openai` client. OpenAI's completions are raw: the prompt is continued as given, without a
 * chat template; the scripted model answers SCRIPTED_REPLY whatever it reads. What reaches the engine (raw,
 * suffix) and the refusals are checked on the fake engine at the end.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { ensureFixtures, SCRIPTED_REPLY, splitReply } from "../fixtures/models.js";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { createModel, postJson, type TestServer, startEngineServer } from "../helpers/start-server.js";

for (const engine of ["llama-cpp", "llama-server"] as const) {
  describe(`engine ${engine}`, () => {
    let server: TestServer;
    let openai: OpenAI;
    before(async () => {
      const fixtures = await ensureFixtures();
      server = await startEngineServer(engine, { numParallel: 2 });
      openai = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: "unused", maxRetries: 0 });
      await createModel(server.baseUrl, "scripted", fixtures.chat);
    });
    after(() => server?.close());

    test("create: the exact continuation, as a text_completion with usage", async () => {
      const completion = await openai.completions.create({ model: "scripted", prompt: "Once upon a time" });
      assert.match(completion.id, /^cmpl-[A-Za-z0-9]+$/);
      assert.equal(completion.object, "text_completion");
      assert.equal(completion.model, "scripted");
      assert.deepEqual(completion.choices, [{ index: 0, text: SCRIPTED_REPLY, logprobs: null, finish_reason: "stop" }]);
      const usage = completion.usage;
      assert.ok(usage && usage.prompt_tokens > 0 && usage.completion_tokens > 0);
      assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
    });

    test("stream: texts join to the reply; a finish chunk; the usage chunk; [DONE] ends it", async () => {
      const chunks: OpenAI.Completion[] = [];
      const stream = await openai.completions.create({ model: "scripted", prompt: "Hi", stream: true, stream_options: { include_usage: true } });
      for await (const chunk of stream) chunks.push(chunk);
      assert.equal(chunks.map((c) => c.choices[0]?.text ?? "").join(""), SCRIPTED_REPLY);
      assert.deepEqual(chunks.at(-2)?.choices, [{ index: 0, text: "", logprobs: null, finish_reason: "stop" }]);
      assert.deepEqual(chunks.at(-1)?.choices, []);
      assert.ok((chunks.at(-1)?.usage?.completion_tokens ?? 0) > 0);
      assert.ok(chunks.slice(0, -1).every((c) => c.usage === null && c.object === "text_completion"));
      assert.equal(new Set(chunks.map((c) => `${c.id} ${c.created}`)).size, 1);
    });

    test("stop, max_tokens → length, echo", async () => {
      const stopped = await openai.completions.create({ model: "scripted", prompt: "Hi", stop: "!" });
      assert.equal(stopped.choices[0]?.text, "Hello");
      assert.equal(stopped.choices[0]?.finish_reason, "stop");
      const short = await openai.completions.create({ model: "scripted", prompt: "Hi", max_tokens: 3 });
      assert.equal(short.choices[0]?.text, "Hello! I");
      assert.equal(short.choices[0]?.finish_reason, "length");
      const echoed = await openai.completions.create({ model: "scripted", prompt: "Please say", echo: true });
      assert.equal(echoed.choices[0]?.text, `Please say${SCRIPTED_REPLY}`);
    });

    test("n and several prompts: choice p × n + j is prompt p's j-th", async () => {
      const completion = await openai.completions.create({ model: "scripted", prompt: ["One", "Two"], n: 2, max_tokens: 3 });
      assert.deepEqual(
        completion.choices.map((c) => [c.index, c.text, c.finish_reason]),
        [0, 1, 2, 3].map((index) => [index, "Hello! I", "length"]),
      );
      assert.equal(completion.usage?.completion_tokens, 12);
    });

    test("logprobs: the legacy shape, tokens joining to the text with their offsets", async () => {
      const completion = await openai.completions.create({ model: "scripted", prompt: "Hi", logprobs: 2 });
      const choice = completion.choices[0];
      assert.equal(choice?.text, SCRIPTED_REPLY);
      const logprobs = choice?.logprobs;
      assert.ok(logprobs?.tokens && logprobs.token_logprobs && logprobs.top_logprobs && logprobs.text_offset);
      assert.equal(logprobs.tokens.join(""), SCRIPTED_REPLY);
      assert.equal(logprobs.tokens.length, splitReply(SCRIPTED_REPLY).length);
      logprobs.tokens.forEach((token, i) => {
        assert.equal(SCRIPTED_REPLY.slice(logprobs.text_offset?.[i], (logprobs.text_offset?.[i] ?? 0) + token.length), token, "text_offset points at the token");
        assert.ok((logprobs.token_logprobs?.[i] ?? -1) > -0.01);
        const top = logprobs.top_logprobs?.[i] ?? {};
        assert.equal(Object.keys(top).length, 2);
        assert.ok(token in top);
      });

      const stream = await openai.completions.create({ model: "scripted", prompt: "Hi", logprobs: 0, stream: true });
      let offset = 0;
      for await (const chunk of stream) {
        const c = chunk.choices[0];
        if (!c?.text) continue;
        assert.equal(c.logprobs?.tokens?.join(""), c.text, "a chunk's logprobs cover its text");
        assert.equal(c.logprobs?.text_offset?.[0], offset, "offsets continue across chunks");
        offset += c.text.length;
      }
      assert.equal(offset, SCRIPTED_REPLY.length);
    });
  });
}

describe("what reaches the engine, and refusals (fake engine)", () => {
  let server: FakeServer;
  let openai: OpenAI;
  before(async () => {
    server = await startFakeServer();
    openai = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  test("the prompt is raw; suffix is fill-in-the-middle on a model with insert; OpenAI's sampling defaults", async () => {
    await openai.completions.create({ model: "fim", prompt: "def add(a, b):", suffix: "\n    return c", max_tokens: 20, seed: 3, logprobs: 1 });
    assert.deepEqual(server.engine.last("complete"), {
      prompt: "def add(a, b):",
      suffix: "\n    return c",
      raw: true,
      format: { type: "text" },
      sampling: { temperature: 1, topP: 1, seed: 3, maxTokens: 20 },
      logprobs: { top: 1 },
    });
  });

  test("refusals are 400s naming the field", async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ suffix: "x" }, /^"chat" does not support insert/],
      [{ prompt: [1, 2, 3] }, /^prompt: token-id prompts are not supported/],
      [{ echo: true, logprobs: 1 }, /^echo: /],
      [{ best_of: 3 }, /^best_of: /],
      [{ logprobs: 21 }, /^logprobs: must be between 0 and 20/],
      [{ prompt: ["a", "b", "c", "d", "e"], n: 4 }, /^n: 4 choices for each of 5 prompts are more than 16/],
      [{ prompt: 5 }, /^prompt: /],
      [{ guided_json: {} }, /^guided_json: /],
      [{ model: "embedder" }, /^"embedder" does not support completions/],
    ];
    for (const [fields, message] of cases) {
      const response = await postJson(server.baseUrl, "/v1/completions", { model: "chat", prompt: "Hi", ...fields });
      assert.equal(response.status, 400, JSON.stringify(fields));
      const body = (await response.json()) as { error: { message: string; type: string } };
      assert.match(body.error.message, message, JSON.stringify(fields));
      assert.equal(body.error.type, "invalid_request_error");
    }
    const missing = await postJson(server.baseUrl, "/v1/completions", { model: "nope", prompt: "Hi" });
    assert.equal(missing.status, 404);
  });
});
