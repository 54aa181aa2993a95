/**
 * `truncate` and `shift` on /api/chat at the context limit, with REAL inference on each engine (in process, and
 * llama.cpp's llama-server) and a 256-token context: a conversation longer than the context loses its oldest turns
 * unless `truncate` is false (then 400); a reply that reaches the end of the context goes on past it unless `shift` is
 * false (then it stops there with `length`). The scripted model's reply depends only on the last token, so it is the
 * same however much of the context is left.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ensureFixtures, SCRIPTED_REPLY } from "../fixtures/models.js";
import { createModel, postJson, type TestServer, startEngineServer } from "../helpers/start-server.js";

const CONTEXT = 256;

interface ChatAnswer {
  message: { content: string };
  done_reason: string;
  prompt_eval_count: number;
}

for (const engine of ["llama-server", "llama-cpp"] as const) {
  describe(`engine ${engine}`, () => {
    let server: TestServer;
    before(async () => {
      const fixtures = await ensureFixtures();
      server = await startEngineServer(engine, { contextLength: CONTEXT });
      await createModel(server.baseUrl, "scripted", fixtures.chat);
    });
    after(() => server?.close());

    const chat = async (messages: Array<{ role: string; content: string }>, extra: Record<string, unknown> = {}): Promise<Response> =>
      postJson(server.baseUrl, "/api/chat", { model: "scripted", messages, stream: false, options: { temperature: 0 }, ...extra });

    /** A user turn of `n` tokens of the model's own tokenizer ('the' is one token of its vocabulary). */
    const words = async (n: number): Promise<string> => {
      const text = "the ".repeat(n).trimEnd();
      const { tokens } = (await (await postJson(server.baseUrl, "/api/tokenize", { model: "scripted", content: text, add_special: false })).json()) as { tokens: number[] };
      assert.equal(tokens.length, n, "one token per word");
      return text;
    };

    test("a conversation longer than the context: the oldest turns are dropped, or with truncate:false a 400", async () => {
      const turn = await words(60);
      const history = Array.from({ length: 3 }, () => [{ role: "user", content: turn }, { role: "assistant", content: turn }]).flat();
      const messages = [...history, { role: "user", content: "Hi" }];

      const refused = await chat(messages, { truncate: false });
      assert.equal(refused.status, 400);
      assert.match(((await refused.json()) as { error: string }).error, /context/);

      for (const extra of [{}, { truncate: true }]) {
        const response = await chat(messages, extra);
        assert.equal(response.status, 200, JSON.stringify(extra));
        const answer = (await response.json()) as ChatAnswer;
        assert.equal(answer.message.content, SCRIPTED_REPLY);
        assert.ok(answer.prompt_eval_count < CONTEXT, `the prompt was cut to fit: ${answer.prompt_eval_count} tokens`);
      }
    });

    test("a reply that reaches the end of the context: shift:false stops it there (length); by default it goes on", async () => {
      // An earlier exchange, then "Hi": shifting may discard the exchange (the system prompt and the last turn are kept).
      const conversation = async (earlier: number): Promise<Array<{ role: string; content: string }>> => [
        { role: "user", content: await words(earlier - Math.floor(earlier / 2)) },
        { role: "assistant", content: await words(Math.floor(earlier / 2)) },
        { role: "user", content: "Hi" },
      ];
      // A fresh load has no cached prompt, so prompt_eval_count counts the whole prompt: the template's tokens besides the words.
      await chat([], { keep_alive: 0 });
      const probe = (await (await chat(await conversation(20), { options: { temperature: 0, num_predict: 1 } })).json()) as ChatAnswer;
      const overhead = probe.prompt_eval_count - 20;
      // A prompt that fits, with room for 4 of the reply's 9 tokens.
      const messages = await conversation(CONTEXT - overhead - 4);

      const stopped = (await (await chat(messages, { shift: false })).json()) as ChatAnswer;
      assert.equal(stopped.done_reason, "length", JSON.stringify(stopped));
      assert.ok(stopped.message.content.length > 0 && stopped.message.content.length < SCRIPTED_REPLY.length, JSON.stringify(stopped.message.content));
      assert.ok(SCRIPTED_REPLY.startsWith(stopped.message.content));

      for (const extra of [{}, { shift: true }]) {
        const shifted = (await (await chat(messages, extra)).json()) as ChatAnswer;
        assert.equal(shifted.done_reason, "stop", JSON.stringify(shifted));
        assert.equal(shifted.message.content, SCRIPTED_REPLY);
      }
    });
  });
}
