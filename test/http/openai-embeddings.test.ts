/**
 * POST /v1/embeddings end to end with REAL inference (each engine: in process, and llama.cpp's llama-server), driven by
 * the official `openai` client (which asks for base64 unless told otherwise, and decodes it) and LangChain's
 * OpenAIEmbeddings, on the random `tiny` fixture model. The same vectors must come back in both encodings and as on
 * /api/embed, which also proves `dimensions` there.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { OpenAIEmbeddings } from "@langchain/openai";
import OpenAI from "openai";
import { ensureFixtures } from "../fixtures/models.js";
import { createModel, postJson, type TestServer, startEngineServer } from "../helpers/start-server.js";

const TEXTS = ["hello world", "the weather in Paris"];
/** Longer than the 1024-token context of the servers below. */
const LONG_INPUT = "word ".repeat(3000);

/** What a float32 decoding of `vector` gives: the values a base64 answer carries. */
const asFloat32 = (vector: readonly number[]): number[] => vector.map((v) => Math.fround(v));
const norm = (vector: readonly number[]): number => Math.hypot(...vector);

async function apiEmbed(server: TestServer, body: Record<string, unknown>): Promise<number[][]> {
  const response = await postJson(server.baseUrl, "/api/embed", body);
  assert.equal(response.status, 200);
  return ((await response.json()) as { embeddings: number[][] }).embeddings;
}

for (const engine of ["llama-cpp", "llama-server"] as const) {
  describe(`engine ${engine}`, () => {
    let server: TestServer;
    let client: OpenAI;

    before(async () => {
      const fixtures = await ensureFixtures();
      server = await startEngineServer(engine);
      await createModel(server.baseUrl, "tiny", fixtures.tiny);
      await createModel(server.baseUrl, "scripted", fixtures.chat);
      client = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: "unused", maxRetries: 0 });
    });
    after(() => server?.close());

    test("openai client: the default (base64, decoded by the SDK) equals the float answer, in input order, with usage", async () => {
      const floats = await client.embeddings.create({ model: "tiny", input: TEXTS, encoding_format: "float" });
      assert.equal(floats.object, "list");
      assert.equal(floats.model, "tiny");
      assert.deepEqual(floats.data.map((d) => [d.object, d.index]), [["embedding", 0], ["embedding", 1]]);
      for (const { embedding } of floats.data) {
        assert.equal(embedding.length, 64);
        assert.ok(Math.abs(norm(embedding) - 1) < 1e-4, "L2-normalised");
      }
      assert.notDeepEqual(floats.data[0]?.embedding, floats.data[1]?.embedding);
      assert.ok(floats.usage.prompt_tokens > 0);
      assert.equal(floats.usage.total_tokens, floats.usage.prompt_tokens);

      const decoded = await client.embeddings.create({ model: "tiny", input: TEXTS });
      assert.deepEqual(
        decoded.data.map((d) => d.embedding),
        floats.data.map((d) => asFloat32(d.embedding)),
        "the SDK's decoding of our base64 gives the float answer's values, to float32 precision",
      );

      const raw = await postJson(server.baseUrl, "/v1/embeddings", { model: "tiny", input: TEXTS[0], encoding_format: "base64" });
      const body = (await raw.json()) as { data: Array<{ embedding: string }> };
      const bytes = Buffer.from(body.data[0]?.embedding ?? "", "base64");
      assert.equal(bytes.length, 64 * 4, "64 little-endian float32 values");
      assert.deepEqual(Array.from({ length: 64 }, (_, i) => bytes.readFloatLE(i * 4)), asFloat32(floats.data[0]?.embedding ?? []));
    });

    test("the same vectors as /api/embed; dimensions keeps the first N values, re-normalised, on both APIs", async () => {
      const native = await apiEmbed(server, { model: "tiny", input: TEXTS });
      const openai = await client.embeddings.create({ model: "tiny", input: TEXTS, encoding_format: "float" });
      assert.deepEqual(openai.data.map((d) => d.embedding), native);

      const full = native[0] ?? [];
      const prefix = full.slice(0, 16);
      const expected = prefix.map((v) => v / norm(prefix));
      const [nativeShort] = await apiEmbed(server, { model: "tiny", input: TEXTS[0], dimensions: 16 });
      const openaiShort = await client.embeddings.create({ model: "tiny", input: TEXTS[0] ?? "", dimensions: 16, encoding_format: "float" });
      for (const short of [nativeShort ?? [], openaiShort.data[0]?.embedding ?? []]) {
        assert.equal(short.length, 16);
        short.forEach((v, i) => assert.ok(Math.abs(v - (expected[i] ?? NaN)) < 1e-6, `value ${i}: ${v} vs ${expected[i]}`));
      }
    });

    test("token ids: one list is one input, a list of lists one input each; the same vectors as the text they spell", async () => {
      const tokenized = await postJson(server.baseUrl, "/api/tokenize", { model: "tiny", content: TEXTS[0] });
      assert.equal(tokenized.status, 200, await tokenized.clone().text());
      const { tokens } = (await tokenized.json()) as { tokens: number[] };
      const [fromText] = await apiEmbed(server, { model: "tiny", input: TEXTS[0] });

      const one = await client.embeddings.create({ model: "tiny", input: tokens, encoding_format: "float" });
      assert.equal(one.data.length, 1);
      assert.equal(one.usage.prompt_tokens, tokens.length);
      assert.deepEqual(one.data[0]?.embedding, fromText, "the tokens /api/tokenize gives for a text embed as that text does");

      const two = await client.embeddings.create({ model: "tiny", input: [tokens, tokens.slice(0, 2)], encoding_format: "float" });
      assert.equal(two.data.length, 2);
      assert.deepEqual(two.data[0]?.embedding, fromText);
      assert.notDeepEqual(two.data[1]?.embedding, fromText);
    });

    test("LangChain OpenAIEmbeddings: embedDocuments and embedQuery give the SDK's vectors", async () => {
      const embeddings = new OpenAIEmbeddings({ model: "tiny", apiKey: "unused", configuration: { baseURL: `${server.baseUrl}/v1` }, maxRetries: 0 });
      const documents = await embeddings.embedDocuments(TEXTS);
      const native = await apiEmbed(server, { model: "tiny", input: TEXTS });
      assert.deepEqual(documents, native.map(asFloat32));
      assert.deepEqual(await embeddings.embedQuery(TEXTS[1] ?? ""), asFloat32(native[1] ?? []));

      const short = new OpenAIEmbeddings({ model: "tiny", dimensions: 8, apiKey: "unused", configuration: { baseURL: `${server.baseUrl}/v1` } });
      assert.equal((await short.embedQuery("hello")).length, 8);
    });

    test("chat models embed too (as on /api/embed); the extra num_ctx loads the model with that context", async () => {
      const scripted = await client.embeddings.create({ model: "scripted", input: "Hi", encoding_format: "float" });
      assert.equal(scripted.data.length, 1);
      assert.ok(Math.abs(norm(scripted.data[0]?.embedding ?? []) - 1) < 1e-4);

      const response = await postJson(server.baseUrl, "/v1/embeddings", { model: "tiny", input: "hi", num_ctx: 512, keep_alive: "1h" });
      assert.equal(response.status, 200);
      const ps = (await (await fetch(`${server.baseUrl}/api/ps`)).json()) as { models: Array<{ name: string; context_length: number; expires_at: string }> };
      const tiny = ps.models.find((m) => m.name === "tiny:latest" && m.context_length === 512);
      assert.ok(tiny, JSON.stringify(ps.models));
      assert.ok(Date.parse(tiny.expires_at) - Date.now() > 59 * 60_000, "keep_alive 1h");
    });

    test("an input longer than the context is a 400 in OpenAI's shape, unless the extra truncate:true cuts it", async () => {
      await assert.rejects(client.embeddings.create({ model: "tiny", input: LONG_INPUT }), (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError);
        assert.match(error.message, /exceeds the context length/);
        assert.equal(error.code, "context_overflow");
        return true;
      });
      const cut = await postJson(server.baseUrl, "/v1/embeddings", { model: "tiny", input: LONG_INPUT, truncate: true });
      assert.equal(cut.status, 200);
      assert.equal(((await cut.json()) as { data: unknown[] }).data.length, 1);
    });

    test("bad requests are 400s naming the field; an unknown model is a 404, in OpenAI's error shape", async () => {
      const cases: Array<[Record<string, unknown>, string, string | null]> = [
        [{ model: "tiny", input: "x", encoding_format: "int8" }, 'encoding_format: expected "float" or "base64"', "encoding_format"],
        [{ model: "tiny", input: "" }, "input: must not be empty", "input"],
        [{ model: "tiny", input: [] }, "input: must not be empty", "input"],
        [{ model: "tiny", input: ["a", ""] }, "input[1]: must not be empty", "input[1]"],
        [{ model: "tiny", input: [1, "a"] }, "input: expected a string, an array of strings, an array of token ids or an array of token-id arrays", "input"],
        [{ model: "tiny", input: "x", dimensions: 0 }, "dimensions: Too small: expected number to be >0", "dimensions"],
        [{ input: "x" }, "model: model is required", "model"],
      ];
      for (const [body, message, param] of cases) {
        const response = await postJson(server.baseUrl, "/v1/embeddings", body);
        assert.equal(response.status, 400, JSON.stringify(body));
        assert.deepEqual(await response.json(), { error: { message, type: "invalid_request_error", param, code: "invalid_request" } }, JSON.stringify(body));
      }
      await assert.rejects(client.embeddings.create({ model: "nope", input: "x" }), (error: unknown) => {
        assert.ok(error instanceof OpenAI.NotFoundError);
        assert.equal(error.code, "model_not_found");
        return true;
      });
    });
  });
}
