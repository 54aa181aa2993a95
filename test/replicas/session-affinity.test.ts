/**
 * Session affinity on one replica, with real inference on the fixture models (one thread): the session header is
 * echoed, the replica names itself, and two interleaved sessions on a 2-slot model each keep their own slot, so that
 * every turn after the first reuses the session's whole previous prompt from the cache (cached prompt tokens in the
 * usage), on both engines. The two sessions share a long system prompt and differ only after it: without the header
 * the engines' own choice (the slot with the longest common prefix) puts the second session on the first one's slot,
 * and each turn then reuses only the shared system prompt — which the test also shows, so that it cannot pass by
 * chance.
 */
import assert from "node:assert/strict";
import { after, before, describe, test, type TestContext } from "node:test";
import OpenAI from "openai";
import type { EngineName } from "../../src/engine/engine.js";
import { ensureFixtures } from "../fixtures/models.js";
import { createModel, postJson, startEngineServer, type TestServer } from "../helpers/start-server.js";

const SYSTEM = "You are a helpful assistant who answers every question about the weather in a few short words. ".repeat(6);

interface Turn {
  prompt: number;
  cached: number;
}

/** Sends turns 1..3 of sessions A and B interleaved (A1 B1 A2 B2 A3 B3), each with its whole conversation so far. */
async function interleaved(client: OpenAI, tag: string, session: (name: string) => string | undefined): Promise<Record<string, Turn[]>> {
  const conversations: Record<string, OpenAI.ChatCompletionMessageParam[]> = {
    A: [{ role: "system", content: SYSTEM }],
    B: [{ role: "system", content: SYSTEM }],
  };
  const turns: Record<string, Turn[]> = { A: [], B: [] };
  for (let n = 1; n <= 3; n++) {
    for (const name of ["A", "B"]) {
      const messages = conversations[name]!;
      messages.push({ role: "user", content: `Session ${name}${tag}, question ${n}: what about the weather in city number ${n * 7} of ${name}?` });
      const id = session(name);
      const response = await client.chat.completions.create(
        { model: "chat", messages, temperature: 0, max_tokens: 8 },
        id === undefined ? {} : { headers: { "x-session-id": id } },
      );
      messages.push({ role: "assistant", content: response.choices[0]!.message.content ?? "" });
      turns[name]!.push({ prompt: response.usage!.prompt_tokens, cached: response.usage!.prompt_tokens_details?.cached_tokens ?? 0 });
    }
  }
  return turns;
}

/** Unloads the model (Ollama's keep_alive 0): the next request loads it with empty slots. */
async function unload(baseUrl: string): Promise<void> {
  const response = await postJson(baseUrl, "/api/generate", { model: "chat", keep_alive: 0 });
  assert.equal(response.status, 200, await response.text());
}

function show(t: TestContext, label: string, turns: Record<string, Turn[]>): void {
  for (const [name, list] of Object.entries(turns)) t.diagnostic(`${label} ${name}: ${list.map((u, i) => `turn ${i + 1} prompt ${u.prompt} cached ${u.cached}`).join("; ")}`);
}

for (const engine of ["llama-server", "llama-cpp"] as const satisfies readonly EngineName[]) {
  describe(`session affinity, ${engine} engine, 2 slots`, () => {
    let server: TestServer;
    let client: OpenAI;

    before(async () => {
      server = await startEngineServer(engine, { numParallel: 2, replicaName: "replica-x" });
      await createModel(server.baseUrl, "chat", (await ensureFixtures()).chat);
      client = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: "unused", maxRetries: 0 });
    });

    after(async () => {
      await server?.close();
    });

    test("the session header comes back, and x-ai-server-replica names the replica", async () => {
      const { response } = await client.chat.completions
        .create({ model: "chat", messages: [{ role: "user", content: "Hi" }], max_tokens: 4 }, { headers: { "x-session-id": "conversation-42" } })
        .withResponse();
      assert.equal(response.headers.get("x-session-id"), "conversation-42");
      assert.equal(response.headers.get("x-ai-server-replica"), "replica-x");
      const plain = await fetch(`${server.baseUrl}/api/version`);
      assert.equal(plain.headers.get("x-session-id"), null, "no session, none echoed");
      assert.equal(plain.headers.get("x-ai-server-replica"), "replica-x");
      const odd = await fetch(`${server.baseUrl}/api/version`, { headers: { "x-session-id": "not a plain id" } });
      assert.equal(odd.status, 200);
      assert.equal(odd.headers.get("x-session-id"), null, "a value that is not a plain id is ignored");
    });

    test("two interleaved sessions: each turn reuses the session's whole previous prompt; without the header, only the shared system prompt", async (t) => {
      // Each run on a freshly loaded model (empty slots): first the control, without the header.
      const without = await interleaved(client, "1", () => undefined);
      show(t, "without", without);
      const reusedWhole = Object.values(without).flatMap((turns) => turns.slice(1).map((turn, i) => turn.cached >= turns[i]!.prompt));
      assert.ok(reusedWhole.includes(false), "without sessions some turn re-reads its conversation (else this test proves nothing)");
      await unload(server.baseUrl);

      const withSessions = await interleaved(client, "2", (name) => `conversation-${name}`);
      show(t, "with x-session-id", withSessions);
      for (const [name, turns] of Object.entries(withSessions)) {
        turns.forEach((turn, i) => {
          const previous = turns[i - 1];
          if (previous === undefined) return;
          assert.ok(turn.cached >= previous.prompt, `${name}, turn ${i + 1}: cached ${turn.cached}, the previous turn's prompt was ${previous.prompt}`);
        });
      }
    });
  });
}
