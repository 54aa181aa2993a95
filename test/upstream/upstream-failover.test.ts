/**
 * Failover between an upstream model's endpoints, for real: a plain llama-server (one thread, one slot, so requests
 * queue inside it) and a second ai-server, both on the scripted fixture, behind the server under test. One endpoint is
 * killed with SIGKILL mid-traffic; a loopback relay in front of an endpoint stands for the network's faults (503,
 * reset, silence, a cut mid-answer), which a test cannot cause otherwise.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ensureFixtures, SCRIPTED_REPLY } from "../fixtures/models.js";
import { parsePrometheusText, samplesOf, valueOf } from "../helpers/prometheus-text.js";
import { createModel, postJson, startEngineServer, startServer, type TestServer } from "../helpers/start-server.js";
import { createUpstream, Relay, startPlainLlamaServer, type PlainLlamaServer } from "./upstream-helpers.js";

interface Streamed {
  status: number;
  /** Some answer text reached the client before the stream ended. */
  gotText: boolean;
  text: string;
  /** The stream ended with [DONE]. */
  completed: boolean;
  error?: string;
}

/** A streamed chat completion read by hand: what reached the client, and how it ended. */
async function streamChat(baseUrl: string, model: string, init: RequestInit = {}): Promise<Streamed> {
  const response = await postJson(baseUrl, "/v1/chat/completions", { model, messages: [{ role: "user", content: "hi" }], stream: true }, init);
  const result: Streamed = { status: response.status, gotText: false, text: "", completed: false };
  if (response.status !== 200) return { ...result, error: await response.text() };
  const body = await response.text();
  for (const event of body.split("\n\n")) {
    const data = event.replace(/^data: /, "").trim();
    if (data === "") continue;
    if (data === "[DONE]") {
      result.completed = true;
      continue;
    }
    const chunk = JSON.parse(data) as { error?: { message: string }; choices?: Array<{ delta?: { content?: string } }> };
    if (chunk.error) result.error = chunk.error.message;
    const content = chunk.choices?.[0]?.delta?.content ?? "";
    if (content !== "") result.gotText = true;
    result.text += content;
  }
  return result;
}

async function metrics(server: TestServer): Promise<ReturnType<typeof parsePrometheusText>> {
  return parsePrometheusText(await (await fetch(`${server.baseUrl}/metrics`)).text());
}

async function endpointStatus(server: TestServer, model: string, url: string): Promise<Record<string, unknown> | undefined> {
  const ps = (await (await fetch(`${server.baseUrl}/api/ps`)).json()) as { models: Array<{ name: string; upstream?: { endpoints: Array<Record<string, unknown>> } }> };
  return ps.models.find((m) => m.name === `${model}:latest`)?.upstream?.endpoints.find((e) => e.url === url);
}

let llama: PlainLlamaServer;
let peer: TestServer;
let peerUrl: string;
let server: TestServer;

before(async () => {
  const fixtures = await ensureFixtures();
  [llama, peer] = await Promise.all([startPlainLlamaServer(fixtures.chat, { slots: 1 }), startEngineServer("llama-cpp", { numParallel: 2 })]);
  await createModel(peer.baseUrl, "scripted", fixtures.chat);
  peerUrl = `${peer.baseUrl}/v1`;
  // Health checks only at load here, so that every cooldown below comes from a request.
  server = await startServer({ config: { upstreamHealthIntervalMs: "0", loadCooldownMs: "0" } });
});

after(async () => {
  await server?.close();
  await peer?.close();
  await llama?.kill();
});

describe("an endpoint's failures before the answer begins go to another endpoint", () => {
  let relay: Relay;
  before(async () => {
    relay = await new Relay(peerUrl).start();
  });
  after(() => relay.close());

  test("503: retried on the other endpoint, the failing one cools down and gets no traffic meanwhile", async () => {
    const created = await createUpstream(server.baseUrl, "via-503", { endpoints: [{ url: relay.url, model: "scripted" }, { url: peerUrl, model: "scripted" }] });
    assert.equal(created.status, 200);
    assert.equal((await streamChat(server.baseUrl, "via-503")).text, SCRIPTED_REPLY, "loaded, both endpoints healthy");
    relay.mode = "unavailable";
    const before = relay.seen.length;
    for (let i = 0; i < 2; i++) {
      const result = await streamChat(server.baseUrl, "via-503");
      assert.deepEqual([result.text, result.completed, result.error], [SCRIPTED_REPLY, true, undefined]);
    }
    assert.equal(relay.seen.length - before, 1, "one of the two requests went to the failing endpoint (weights 1:1)");
    for (let i = 0; i < 4; i++) assert.equal((await streamChat(server.baseUrl, "via-503")).text, SCRIPTED_REPLY);
    assert.equal(relay.seen.length - before, 1, "no traffic to it during its cooldown");
    const status = await endpointStatus(server, "via-503", relay.url);
    assert.equal(status?.healthy, false);
    assert.equal(status?.failures, 1);
    assert.match(String(status?.cooling_until), /^\d{4}-/);
    assert.match(String(status?.last_error), /HTTP 503/);
    const m = await metrics(server);
    assert.equal(valueOf(m, "ai_server_upstream_retries_total", { model: "via-503:latest", endpoint: relay.url }), 1);
    assert.equal(valueOf(m, "ai_server_upstream_cooldowns_total", { model: "via-503:latest", endpoint: relay.url }), 1);
    assert.equal(valueOf(m, "ai_server_upstream_requests_total", { model: "via-503:latest", endpoint: relay.url, outcome: "server_error" }), 1);
    assert.ok((valueOf(m, "ai_server_upstream_requests_total", { model: "via-503:latest", endpoint: peerUrl, outcome: "ok" }) ?? 0) >= 6);
  });

  test("a reset connection and a silent endpoint (past its first-byte timeout) are retried the same way", async () => {
    // (Each model's own max_parallel: two names for one configuration would share one loaded instance, like copies.)
    for (const [mode, maxParallel] of [["reset", 30], ["hold", 31]] as const) {
      relay.mode = "pass";
      const name = `via-${mode}`;
      const created = await createUpstream(server.baseUrl, name, { endpoints: [{ url: relay.url, model: "scripted" }, { url: peerUrl, model: "scripted" }], first_byte_timeout: "1s", max_parallel: maxParallel });
      assert.equal(created.status, 200);
      assert.equal((await streamChat(server.baseUrl, name)).text, SCRIPTED_REPLY);
      relay.mode = mode;
      for (let i = 0; i < 2; i++) assert.equal((await streamChat(server.baseUrl, name)).text, SCRIPTED_REPLY, `${mode} ${i}`);
      const m = await metrics(server);
      const outcome = mode === "reset" ? "connect_error" : "timeout";
      assert.equal(valueOf(m, "ai_server_upstream_requests_total", { model: `${name}:latest`, endpoint: relay.url, outcome }), 1, mode);
      assert.equal(valueOf(m, "ai_server_upstream_retries_total", { model: `${name}:latest`, endpoint: relay.url }), 1, mode);
    }
  });

  test("a client that goes away closes the request to the endpoint", async () => {
    relay.mode = "pass";
    assert.equal((await createUpstream(server.baseUrl, "abandoned", { endpoints: [{ url: relay.url, model: "scripted" }] })).status, 200);
    assert.equal((await streamChat(server.baseUrl, "abandoned")).text, SCRIPTED_REPLY);
    relay.mode = "hold";
    const closed = relay.closedEarly;
    const seen = relay.seen.length;
    const abort = new AbortController();
    const pending = postJson(server.baseUrl, "/v1/chat/completions", { model: "abandoned", messages: [{ role: "user", content: "hi" }], stream: true }, { signal: abort.signal });
    while (relay.seen.length === seen) await new Promise((resolve) => setTimeout(resolve, 20));
    abort.abort();
    await assert.rejects(pending);
    for (let i = 0; i < 200 && relay.closedEarly === closed; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(relay.closedEarly, closed + 1, "the held request's connection was closed");
  });
});

describe("after the first byte, a failure ends the request in-band and is never retried", () => {
  test("the endpoint cut mid-answer: the text so far, then the error; the other endpoint never sees the request", async () => {
    const relay = await new Relay(peerUrl).start();
    try {
      assert.equal((await createUpstream(server.baseUrl, "cut", { endpoints: [{ url: relay.url, model: "scripted" }, { url: peerUrl, model: "scripted" }] })).status, 200);
      relay.mode = "cut";
      relay.cutAfterEvents = 3;
      const result = await streamChat(server.baseUrl, "cut");
      assert.equal(result.status, 200);
      assert.ok(result.gotText && SCRIPTED_REPLY.startsWith(result.text) && result.text.length < SCRIPTED_REPLY.length, result.text);
      assert.equal(result.completed, false);
      assert.match(String(result.error), /failed in the middle of its answer/);
      const m = await metrics(server);
      assert.equal(valueOf(m, "ai_server_upstream_requests_total", { model: "cut:latest", endpoint: relay.url, outcome: "broken" }), 1);
      assert.equal(valueOf(m, "ai_server_upstream_retries_total", { model: "cut:latest", endpoint: relay.url }), undefined);
      assert.equal(valueOf(m, "ai_server_upstream_requests_total", { model: "cut:latest", endpoint: peerUrl, outcome: "ok" }), undefined, "no duplicate on the other endpoint");
    } finally {
      await relay.close();
    }
  });

  test("the endpoint's 4xx (a prompt longer than its context) is the request's own error, not retried", async () => {
    assert.equal((await createUpstream(server.baseUrl, "small", { endpoints: [{ url: llama.url, model: "scripted" }, { url: peerUrl, model: "scripted" }] })).status, 200);
    const long = "hello world ".repeat(1200);
    for (let i = 0; i < 2; i++) {
      // Two requests: with weights 1:1 one of them goes to llama-server, whose 1024-token slot refuses the prompt.
      const response = await postJson(server.baseUrl, "/api/chat", { model: "small", messages: [{ role: "user", content: long }], stream: false, options: { num_predict: 1 } });
      if (response.status === 200) continue;
      assert.equal(response.status, 400);
      assert.match(((await response.json()) as { error: string }).error, /context window/);
    }
    const m = await metrics(server);
    assert.equal(valueOf(m, "ai_server_upstream_requests_total", { model: "small:latest", endpoint: llama.url, outcome: "client_error" }), 1);
    assert.equal(samplesOf(m, "ai_server_upstream_retries_total").filter((s) => s.labels.model === "small:latest").length, 0);
  });
});

describe("one endpoint killed mid-traffic", () => {
  test("every request that had not streamed a byte succeeds on the other; the dead one cools down", async (t) => {
    const endpoints = [{ url: llama.url, model: "scripted" }, { url: peerUrl, model: "scripted" }];
    assert.equal((await createUpstream(server.baseUrl, "pair", { endpoints, max_parallel: 16 })).status, 200);
    assert.equal((await streamChat(server.baseUrl, "pair")).text, SCRIPTED_REPLY);
    const results: Array<Promise<Streamed>> = [];
    let finished = 0;
    for (let i = 0; i < 16; i++) results.push(streamChat(server.baseUrl, "pair").finally(() => finished++));
    while (finished < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    await llama.kill();
    // A second wave after the kill: those sent to the dead endpoint before it cools down move to the other.
    for (let i = 0; i < 8; i++) results.push(streamChat(server.baseUrl, "pair"));
    const all = await Promise.all(results);
    for (const [i, result] of all.entries()) {
      if (!result.gotText) assert.deepEqual([result.status, result.text, result.completed, result.error], [200, SCRIPTED_REPLY, true, undefined], `request ${i}`);
      else assert.ok(result.completed ? result.text === SCRIPTED_REPLY : result.error !== undefined, `request ${i}: whole, or cut with an error`);
    }
    assert.ok(all.filter((r) => r.completed).length >= 22, `${all.filter((r) => r.completed).length} of 24 completed`);
    const status = await endpointStatus(server, "pair", llama.url);
    assert.equal(status?.healthy, false);
    assert.match(String(status?.cooling_until), /^\d{4}-/);
    assert.equal((await endpointStatus(server, "pair", peerUrl))?.healthy, true);
    const m = await metrics(server);
    assert.equal(valueOf(m, "ai_server_upstream_cooldowns_total", { model: "pair:latest", endpoint: llama.url }), 1);
    assert.ok((valueOf(m, "ai_server_upstream_retries_total", { model: "pair:latest", endpoint: llama.url }) ?? 0) >= 1);
    assert.equal(valueOf(m, "ai_server_upstream_cooldowns_total", { model: "pair:latest", endpoint: peerUrl }), undefined);
    const retries = valueOf(m, "ai_server_upstream_retries_total", { model: "pair:latest", endpoint: llama.url });
    t.diagnostic(`${all.filter((r) => !r.completed).length} of ${all.length} cut mid-answer; ${retries} moved to the other endpoint`);
  });
});
