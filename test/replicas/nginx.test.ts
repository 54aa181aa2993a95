/**
 * deploy/nginx.conf run for real: Debian's nginx (skipped, saying why, where it is not installed) with that very file
 * (only its listen address and the replicas' addresses changed, test/helpers/nginx-server.ts) in front of two real
 * replicas on loopback (AI_SERVER_REPLICA_NAME ai-1 and ai-2, each with its own home and the models created on it;
 * the llama-server engine, one thread), with real inference through nginx. Requests spread over both replicas; a
 * session stays on one; streams pass through token by token; and with one replica stopped every request still
 * succeeds, those that were sent to it first retried on the other (nginx's access log shows both addresses).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { REPLICA_HEADER } from "../../src/server/session-affinity.js";
import { ensureFixtures, SCRIPTED_REPLY } from "../fixtures/models.js";
import { NginxServer, nginxSkipReason } from "../helpers/nginx-server.js";
import { parsePrometheusText, valueOf } from "../helpers/prometheus-text.js";
import { createModel, startEngineServer, type TestServer } from "../helpers/start-server.js";
import { ensureMediumModel } from "../scheduler/medium-model.js";

const skip = nginxSkipReason();

describe("two replicas behind deploy/nginx.conf", { skip }, () => {
  const replicas = new Map<string, TestServer>();
  let nginx: NginxServer;

  before(async () => {
    const [fixtures, medium] = await Promise.all([ensureFixtures(), ensureMediumModel()]);
    for (const name of ["ai-1", "ai-2"]) {
      const server = await startEngineServer("llama-server", { replicaName: name, numParallel: 1 });
      replicas.set(name, server);
      await createModel(server.baseUrl, "chat", fixtures.chat);
      await createModel(server.baseUrl, "medium", medium);
    }
    const address = (name: string): string => new URL(replicas.get(name)!.baseUrl).host;
    nginx = await NginxServer.start({ "ai-1:11434": address("ai-1"), "ai-2:11434": address("ai-2") });
  });

  after(async () => {
    await nginx?.close();
    await Promise.all([...replicas.values()].map((server) => server.close()));
  });

  /** GET /api/version through nginx; the replica that answered. */
  async function replicaOf(session?: string): Promise<string> {
    const response = await fetch(`${nginx.url}/api/version`, session === undefined ? {} : { headers: { "x-session-id": session } });
    assert.equal(response.status, 200, await response.text());
    if (session !== undefined) assert.equal(response.headers.get("x-session-id"), session, "the session header comes back through nginx");
    return response.headers.get(REPLICA_HEADER) ?? "none";
  }

  function tally(names: string[]): Record<string, number> {
    return names.reduce<Record<string, number>>((counts, name) => ({ ...counts, [name]: (counts[name] ?? 0) + 1 }), {});
  }

  test("requests without a session spread over both replicas", async () => {
    const served = tally(await Promise.all(Array.from({ length: 40 }, () => replicaOf())));
    assert.deepEqual(Object.keys(served).sort(), ["ai-1", "ai-2"], JSON.stringify(served));
  });

  test("every request of a session lands on the same replica; the sessions spread", async () => {
    const sessions = Array.from({ length: 30 }, (_, i) => `session-${i}`);
    const homes = new Map<string, string>();
    for (let round = 0; round < 4; round++) {
      for (const session of sessions) {
        const replica = await replicaOf(session);
        assert.equal(replica, homes.get(session) ?? replica, `${session} moved`);
        homes.set(session, replica);
      }
    }
    assert.deepEqual(Object.keys(tally([...homes.values()])).sort(), ["ai-1", "ai-2"]);
  });

  test("a streamed chat through nginx: the whole reply, in chunks, with usage", async () => {
    const client = new OpenAI({ baseURL: `${nginx.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "chat",
      messages: [{ role: "user", content: "Hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let chunks = 0;
    let completion = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      chunks++;
      completion = chunk.usage?.completion_tokens ?? completion;
    }
    assert.equal(text, SCRIPTED_REPLY);
    assert.ok(chunks > 3, `${chunks} chunks`);
    assert.ok(completion > 0);
  });

  test("streaming is not buffered: the first chunk arrives through nginx while the replica is still generating", async () => {
    const response = await fetch(`${nginx.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-session-id": "stream-check" },
      body: JSON.stringify({ model: "medium", messages: [{ role: "user", content: "Tell me a story." }], stream: true, max_tokens: 300 }),
    });
    assert.equal(response.status, 200);
    const replica = replicas.get(response.headers.get(REPLICA_HEADER) ?? "")!;
    const reader = response.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.match(first, /^data: /);
    // A random model of tens of tokens per second has hundreds of tokens to go: the replica still runs the request.
    const families = parsePrometheusText(await (await fetch(`${replica.baseUrl}/metrics`)).text());
    assert.equal(valueOf(families, "ai_server_num_requests_running", { model_name: "medium:latest" }), 1);
    await reader.cancel();
  });

  test("one replica stopped: every later request succeeds on the other, those sent to the stopped one retried", async () => {
    const sessions = Array.from({ length: 20 }, (_, i) => `failover-${i}`);
    const homes = await Promise.all(sessions.map((session) => replicaOf(session)));
    const movedSessions = sessions.filter((_, i) => homes[i] === "ai-1");
    assert.ok(movedSessions.length > 0, "some sessions lived on ai-1");
    const stopped = new URL(replicas.get("ai-1")!.baseUrl).host;
    await replicas.get("ai-1")!.close();
    replicas.delete("ai-1");

    const before = (await nginx.accessLog()).length;
    for (let round = 0; round < 3; round++) {
      for (const session of sessions) assert.equal(await replicaOf(session), "ai-2", `${session}, round ${round + 1}`);
      for (let i = 0; i < 10; i++) assert.equal(await replicaOf(), "ai-2");
    }
    const client = new OpenAI({ baseURL: `${nginx.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const stream = await client.chat.completions.create(
      { model: "chat", messages: [{ role: "user", content: "Hi" }], stream: true },
      { headers: { "x-session-id": movedSessions[0]! } },
    );
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    assert.equal(text, SCRIPTED_REPLY, "a streamed chat of a session that lived on the stopped replica");

    const entries = (await nginx.accessLog()).slice(before);
    assert.ok(entries.every((entry) => entry.status === 200), JSON.stringify(entries.filter((e) => e.status !== 200)));
    const retried = entries.filter((entry) => entry.upstreams.length === 2);
    assert.ok(retried.length > 0, "some requests went to the stopped replica first");
    assert.ok(retried.every((entry) => entry.upstreams[0] === stopped), JSON.stringify(retried));
  });
});
