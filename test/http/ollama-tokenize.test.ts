/**
 * POST /api/tokenize and /api/detokenize with REAL tokenizers (each engine: in process, and llama.cpp's llama-server)
 * on the scripted fixture, whose vocabulary is read from its own GGUF header here, so the expected ids are known:
 * control tokens at 0–4 (`<s>` = 1, `<|im_start|>` = 3), then byte tokens, then word pieces in SentencePiece spelling.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { readGguf } from "../../src/gguf/read-gguf.js";
import { ensureFixtures, SPM_SPACE } from "../fixtures/models.js";
import { createModel, postJson, type TestServer, startEngineServer } from "../helpers/start-server.js";

const BOS = 1;
const IM_START = 3;
const TEXT = "Hello world";

async function post<T>(server: TestServer, route: string, body: Record<string, unknown>): Promise<T> {
  const response = await postJson(server.baseUrl, route, body);
  assert.equal(response.status, 200, `${route}: ${await response.clone().text()}`);
  return (await response.json()) as T;
}

for (const engine of ["llama-server", "llama-cpp"] as const) {
  describe(`engine ${engine}`, () => {
    let server: TestServer;
    /** The fixture's vocabulary: token id → its text, SentencePiece spelling (▁ for a space). */
    let vocabulary: string[];

    before(async () => {
      const fixtures = await ensureFixtures();
      const header = await readGguf(fixtures.chat, { maxArrayItems: 1_000_000 });
      vocabulary = header.metadata.get("tokenizer.ggml.tokens") as string[];
      server = await startEngineServer(engine);
      await createModel(server.baseUrl, "scripted", fixtures.chat);
    });
    after(() => server?.close());

    /** The text of ids by the fixture's own vocabulary (▁ read as a space). */
    const spelled = (ids: readonly number[]): string => ids.map((id) => vocabulary[id] ?? "?").join("").replaceAll(SPM_SPACE, " ");

    test("ids of the model's own vocabulary, the start token (BOS) first unless add_special is false", async () => {
      const { tokens } = await post<{ tokens: number[] }>(server, "/api/tokenize", { model: "scripted", content: TEXT });
      assert.equal(tokens[0], BOS);
      assert.equal(spelled(tokens.slice(1)), ` ${TEXT}`, "the vocabulary's pieces spell the text (SentencePiece adds the leading space)");
      assert.equal(vocabulary[tokens[1] ?? -1], `${SPM_SPACE}Hello`, "a word of the vocabulary is one token");
      const plain = await post<{ tokens: number[] }>(server, "/api/tokenize", { model: "scripted", content: TEXT, add_special: false });
      assert.deepEqual(plain.tokens, tokens.slice(1));
      const viaText = await post<{ tokens: number[] }>(server, "/api/tokenize", { model: "scripted", text: TEXT });
      assert.deepEqual(viaText.tokens, tokens, "`text` is another name for `content`");
    });

    test("with_pieces: each id with its text", async () => {
      const { tokens } = await post<{ tokens: Array<{ id: number; piece: string }> }>(server, "/api/tokenize", { model: "scripted", content: TEXT, add_special: false, with_pieces: true });
      assert.deepEqual(tokens.map((t) => t.piece), tokens.map((t) => spelled([t.id])), "each piece is its vocabulary entry");
      assert.equal(tokens.map((t) => t.piece).join(""), ` ${TEXT}`);
      const ids = await post<{ tokens: number[] }>(server, "/api/tokenize", { model: "scripted", content: TEXT, add_special: false });
      assert.deepEqual(tokens.map((t) => t.id), ids.tokens);
    });

    test("parse_special (default true) reads special-token text as that token; false tokenizes it as plain text", async () => {
      const special = await post<{ tokens: number[] }>(server, "/api/tokenize", { model: "scripted", content: "<|im_start|>user", add_special: false });
      assert.equal(special.tokens[0], IM_START);
      const plain = await post<{ tokens: number[] }>(server, "/api/tokenize", { model: "scripted", content: "<|im_start|>user", add_special: false, parse_special: false });
      assert.equal(plain.tokens.includes(IM_START), false);
      assert.ok(plain.tokens.length > special.tokens.length);
    });

    test("detokenize gives back the text of the ids", async () => {
      const { tokens } = await post<{ tokens: number[] }>(server, "/api/tokenize", { model: "scripted", content: TEXT, add_special: false });
      const { content } = await post<{ content: string }>(server, "/api/detokenize", { model: "scripted", tokens });
      assert.equal(content, ` ${TEXT}`, "the pieces joined (SentencePiece's leading space stays, as on llama-server's /detokenize)");
      assert.deepEqual(await post(server, "/api/detokenize", { model: "scripted", tokens: [] }), { content: "" });
    });

    test("bad requests: 400 naming the field; an id outside the vocabulary is a 400; an unknown model a 404", async () => {
      const cases: Array<[string, Record<string, unknown>, number, RegExp]> = [
        ["/api/tokenize", { content: TEXT }, 400, /^model is required$/],
        ["/api/tokenize", { model: "scripted", content: 42 }, 400, /^content: /],
        ["/api/detokenize", { model: "scripted", tokens: ["a"] }, 400, /^tokens\[0\]: /],
        ["/api/detokenize", { model: "scripted" }, 400, /^tokens: expected an array of token ids$/],
        ["/api/detokenize", { model: "scripted", tokens: [vocabulary.length + 10] }, 400, /token id \d+ is not in the model's vocabulary/],
        ["/api/tokenize", { model: "nope", content: TEXT }, 404, /^model "nope" not found/],
      ];
      for (const [route, body, status, error] of cases) {
        const response = await postJson(server.baseUrl, route, body);
        assert.equal(response.status, status, `${route} ${JSON.stringify(body)}`);
        assert.match(((await response.json()) as { error: string }).error, error, `${route} ${JSON.stringify(body)}`);
      }
    });
  });
}
