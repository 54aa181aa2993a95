/**
 * POST /v1/rerank and /rerank: the request and answer shapes llama-server and vLLM serve, the refusal of models that
 * are not rerankers, and REAL scores (each engine) from the `reranker` fixture, a rank-pooling model whose scores are
 * known in advance. The shaping (sort, top_n, documents) is also checked on the fake engine, whose scores are the
 * documents' lengths.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { gguf } from "../fixtures/gguf-writer.js";
import { ensureFixtures, RERANK_DOCUMENTS, RERANK_ORDER, RERANK_QUERY, RERANK_SCORES } from "../fixtures/models.js";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { writeFakeModel } from "../helpers/gguf-files.js";
import { createModel, postJson, type TestServer, startEngineServer } from "../helpers/start-server.js";

interface RerankAnswer {
  id: string;
  object: string;
  model: string;
  results: Array<{ index: number; relevance_score: number; document?: { text: string } }>;
  usage: { prompt_tokens: number; total_tokens: number };
}

async function rerank(baseUrl: string, body: Record<string, unknown>, route = "/v1/rerank"): Promise<RerankAnswer> {
  const response = await postJson(baseUrl, route, body);
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as RerankAnswer;
}

describe("on the fake engine (scores: the documents' lengths)", () => {
  let server: FakeServer;
  before(async () => {
    server = await startFakeServer();
    const file = path.join(server.home, "fake-reranker.gguf");
    await writeFakeModel(file, { architecture: "bert", extraMetadata: { "bert.pooling_type": gguf.u32(4) } });
    await createModel(server.baseUrl, "fake-reranker", file);
  });
  after(() => server.close());

  const documents = ["bb", "a", "dddd", "ccc"];

  test("results sorted by relevance, most relevant first, with llama-server's fields; top_n cuts them", async () => {
    const all = await rerank(server.baseUrl, { model: "fake-reranker", query: "q", documents });
    assert.match(all.id, /^rerank-[0-9a-f]{32}$/);
    assert.equal(all.object, "list");
    assert.equal(all.model, "fake-reranker");
    assert.deepEqual(all.results, [
      { index: 2, relevance_score: 4 },
      { index: 3, relevance_score: 3 },
      { index: 0, relevance_score: 2 },
      { index: 1, relevance_score: 1 },
    ]);
    assert.deepEqual(all.usage, { prompt_tokens: 0, total_tokens: 0 });
    const top = await rerank(server.baseUrl, { model: "fake-reranker", query: "q", documents, top_n: 2 });
    assert.deepEqual(top.results.map((r) => r.index), [2, 3]);
    const more = await rerank(server.baseUrl, { model: "fake-reranker", query: "q", documents, top_n: 10 });
    assert.equal(more.results.length, 4, "top_n above the count keeps them all");
  });

  test("documents as objects with text (Jina, Cohere); return_documents echoes them; /rerank answers the same", async () => {
    const answer = await rerank(server.baseUrl, { model: "fake-reranker", query: "q", documents: documents.map((text) => ({ text })), return_documents: true, top_n: 1 });
    assert.deepEqual(answer.results, [{ index: 2, relevance_score: 4, document: { text: "dddd" } }]);
    const alias = await rerank(server.baseUrl, { model: "fake-reranker", query: "q", documents }, "/rerank");
    assert.deepEqual(alias.results.map((r) => r.index), [2, 3, 0, 1]);
  });

  test("a model without rank pooling is refused; bad requests are 400s naming the field; all in OpenAI's error shape", async () => {
    const cases: Array<[string, Record<string, unknown>, number, { message: string; type: string; param: string | null; code: string }]> = [
      ["/v1/rerank", { model: "embedder", query: "q", documents }, 400, {
        message: '"embedder" does not support rerank: only a model whose header declares rank pooling (a reranker) scores documents',
        type: "invalid_request_error", param: null, code: "unsupported_capability",
      }],
      ["/rerank", { model: "chat", query: "q", documents }, 400, {
        message: '"chat" does not support rerank: only a model whose header declares rank pooling (a reranker) scores documents',
        type: "invalid_request_error", param: null, code: "unsupported_capability",
      }],
      ["/v1/rerank", { model: "fake-reranker", query: "q", documents: [] }, 400, { message: "documents: must not be empty", type: "invalid_request_error", param: "documents", code: "invalid_request" }],
      ["/v1/rerank", { model: "fake-reranker", query: "q", documents: [42] }, 400, {
        message: "documents[0]: expected a string or an object with a text field", type: "invalid_request_error", param: "documents[0]", code: "invalid_request",
      }],
      ["/v1/rerank", { model: "fake-reranker", documents }, 400, { message: "query: expected a string", type: "invalid_request_error", param: "query", code: "invalid_request" }],
      ["/rerank", { model: "fake-reranker", query: "q", documents, top_n: 0 }, 400, {
        message: "top_n: Too small: expected number to be >0", type: "invalid_request_error", param: "top_n", code: "invalid_request",
      }],
      ["/rerank", { model: "nope", query: "q", documents }, 404, {
        message: 'model "nope" not found, try pulling it first', type: "not_found_error", param: null, code: "model_not_found",
      }],
    ];
    for (const [route, body, status, error] of cases) {
      const response = await postJson(server.baseUrl, route, body);
      assert.equal(response.status, status, `${route} ${JSON.stringify(body)}`);
      assert.deepEqual(await response.json(), { error }, `${route} ${JSON.stringify(body)}`);
    }
  });
});

for (const engine of ["llama-server", "llama-cpp"] as const) {
  describe(`real scores, engine ${engine}`, () => {
    let server: TestServer;
    before(async () => {
      const fixtures = await ensureFixtures();
      server = await startEngineServer(engine);
      await createModel(server.baseUrl, "reranker", fixtures.reranker);
      await createModel(server.baseUrl, "tiny", fixtures.tiny);
    });
    after(() => server?.close());

    test("the reranker's scores, most relevant first, with the prompt tokens it read", async () => {
      const answer = await rerank(server.baseUrl, { model: "reranker", query: RERANK_QUERY, documents: RERANK_DOCUMENTS });
      assert.deepEqual(answer.results.map((r) => r.index), [...RERANK_ORDER]);
      for (const { index, relevance_score } of answer.results) {
        assert.ok(Math.abs(relevance_score - (RERANK_SCORES[index] ?? NaN)) < 1e-3, `document ${index}: ${relevance_score} vs ${RERANK_SCORES[index]}`);
      }
      assert.ok(answer.usage.prompt_tokens > RERANK_DOCUMENTS.length, "every pair's tokens are counted");
      assert.equal(answer.usage.total_tokens, answer.usage.prompt_tokens);
    });

    test("top_n, return_documents and /rerank on the real model", async () => {
      const answer = await rerank(server.baseUrl, { model: "reranker", query: RERANK_QUERY, documents: RERANK_DOCUMENTS, top_n: 2, return_documents: true }, "/rerank");
      assert.deepEqual(
        answer.results.map((r) => [r.index, r.document?.text]),
        RERANK_ORDER.slice(0, 2).map((i) => [i, RERANK_DOCUMENTS[i]]),
      );
    });

    test("an embedding or chat model that does not rank is refused before it is loaded", async () => {
      const response = await postJson(server.baseUrl, "/v1/rerank", { model: "tiny", query: "q", documents: ["a"] });
      assert.equal(response.status, 400);
      assert.equal(((await response.json()) as { error: { code: string } }).error.code, "unsupported_capability");
      const ps = (await (await fetch(`${server.baseUrl}/api/ps`)).json()) as { models: Array<{ name: string }> };
      assert.equal(ps.models.some((m) => m.name === "tiny:latest"), false);
    });
  });
}
