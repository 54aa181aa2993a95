/**
 * The life of a loaded upstream model beside local ones: periodic health checks (GET {url}/models) put a failing
 * endpoint in its cooldown without any request, and take it back once it answers again after the cooldown; a load
 * succeeds while any endpoint answers; an upstream model takes no memory and no place among
 * AI_SERVER_MAX_LOADED_MODELS, so a local model is never unloaded for it. Real endpoints: a second ai-server (its
 * in-process engine) on the scripted fixture, behind a loopback relay that can answer 503.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ensureFixtures, SCRIPTED_REPLY } from "../fixtures/models.js";
import { freePort } from "../helpers/free-port.js";
import { createModel, postJson, startEngineServer, startServer, type TestServer } from "../helpers/start-server.js";
import { createUpstream, Relay } from "./upstream-helpers.js";

let peer: TestServer;
let peerUrl: string;
let relay: Relay;
let server: TestServer;

before(async () => {
  const fixtures = await ensureFixtures();
  peer = await startEngineServer("llama-cpp");
  await createModel(peer.baseUrl, "scripted", fixtures.chat);
  peerUrl = `${peer.baseUrl}/v1`;
  relay = await new Relay(peerUrl).start();
  server = await startServer({ config: { upstreamHealthIntervalMs: "200ms", upstreamCooldownMs: "1s", maxLoadedModels: 1, numParallel: 1 } });
  await createModel(server.baseUrl, "local", fixtures.chat);
});

after(async () => {
  await server?.close();
  await relay?.close();
  await peer?.close();
});

async function chatText(model: string): Promise<string> {
  const response = await postJson(server.baseUrl, "/api/chat", { model, messages: [{ role: "user", content: "hi" }], stream: false });
  assert.equal(response.status, 200, model);
  return ((await response.json()) as { message: { content: string } }).message.content;
}

interface PsModel {
  name: string;
  engine: string;
  upstream?: { endpoints: Array<{ url: string; healthy: boolean; cooling_until?: string; failures: number }> };
}

async function running(): Promise<PsModel[]> {
  return ((await (await fetch(`${server.baseUrl}/api/ps`)).json()) as { models: PsModel[] }).models;
}

async function relayEndpoint(): Promise<{ healthy: boolean; cooling_until?: string; failures: number } | undefined> {
  return (await running()).find((m) => m.name === "watched:latest")?.upstream?.endpoints.find((e) => e.url === relay.url);
}

/** Polls `check` until it holds (a health check runs every 200 ms; the bound is generous for a busy machine). */
async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`never: ${what}`);
}

test("health checks: a failing endpoint cools down with no request sent, and comes back once it answers", async () => {
  assert.equal((await createUpstream(server.baseUrl, "watched", { endpoints: [{ url: relay.url, model: "scripted" }, { url: peerUrl, model: "scripted" }] })).status, 200);
  assert.equal(await chatText("watched"), SCRIPTED_REPLY);
  const seen = relay.seen.length;
  relay.mode = "unavailable";
  await eventually("the relay's endpoint cools down", async () => (await relayEndpoint())?.cooling_until !== undefined);
  assert.equal((await relayEndpoint())?.healthy, false);
  assert.deepEqual([...new Set(relay.seen.slice(seen).map((r) => `${r.method} ${r.path}`))], ["GET /v1/models"], "only health checks reached it");
  relay.mode = "pass";
  await eventually("it is healthy again", async () => (await relayEndpoint())?.healthy === true);
  assert.equal((await relayEndpoint())?.failures, 0);
});

test("a load succeeds while one endpoint answers; the other starts in its cooldown", async () => {
  const nowhere = `http://127.0.0.1:${await freePort()}/v1`;
  assert.equal((await createUpstream(server.baseUrl, "half", { endpoints: [{ url: nowhere, model: "m" }, { url: peerUrl, model: "scripted" }] })).status, 200);
  for (let i = 0; i < 3; i++) assert.equal(await chatText("half"), SCRIPTED_REPLY);
  const half = (await running()).find((m) => m.name === "half:latest");
  const dead = half?.upstream?.endpoints.find((e) => e.url === nowhere);
  assert.equal(dead?.healthy, false);
  assert.ok(dead?.cooling_until !== undefined);
});

test("a local model stays loaded beside upstream models, even at AI_SERVER_MAX_LOADED_MODELS=1", async () => {
  assert.equal(await chatText("local"), SCRIPTED_REPLY);
  assert.equal(await chatText("watched"), SCRIPTED_REPLY);
  assert.equal(await chatText("half"), SCRIPTED_REPLY);
  const models = await running();
  assert.deepEqual(models.map((m) => [m.name, m.engine]).sort(), [["half:latest", "upstream"], ["local:latest", "llama-cpp"], ["watched:latest", "upstream"]]);
});
