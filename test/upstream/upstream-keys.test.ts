/**
 * Endpoint keys (`api_key_env`): the endpoint — a second ai-server that requires its admin key — gets exactly the
 * key the variable holds, read when a request is sent (a rotated key applies at once); the key shows nowhere else:
 * not in /api/show, /api/ps, /metrics, error bodies, nor the server's log (`ai-server serve` run as a child process,
 * whose log lines are read). A loopback relay in front of the endpoint records the Authorization headers it receives.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { ensureFixtures, SCRIPTED_REPLY } from "../fixtures/models.js";
import { startServeProcess, type ServeProcess } from "../helpers/serve-process.js";
import { postJson, startEngineServer, startServer, type TestServer } from "../helpers/start-server.js";
import { createUpstream, Relay } from "./upstream-helpers.js";

const PEER_KEY = "peer-admin-key-0123456789-abcdefghijklmnop";
const WRONG_KEY = "wrong-key-9876543210-zyxwvutsrqponmlkjihgf";

let peer: TestServer;
let relay: Relay;

before(async () => {
  const fixtures = await ensureFixtures();
  peer = await startEngineServer("llama-cpp", { adminKey: PEER_KEY });
  const { digest } = await peer.app.services.store.blobs.importFile(fixtures.chat);
  await peer.app.services.store.create({ name: "scripted", modelDigest: digest });
  relay = await new Relay(`${peer.baseUrl}/v1`).start();
});

after(async () => {
  await relay?.close();
  await peer?.close();
});

function chat(baseUrl: string, model: string): Promise<Response> {
  return postJson(baseUrl, "/v1/chat/completions", { model, messages: [{ role: "user", content: "hi" }] });
}

test("the key goes to the endpoint, and nowhere else (show, ps, metrics, errors, the log)", async () => {
  const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-upstream-keys-"));
  let server: ServeProcess | undefined;
  try {
    server = await startServeProcess({
      AI_SERVER_HOME: home,
      AI_SERVER_ENGINE: "llama-cpp",
      AI_SERVER_LOAD_COOLDOWN: "0",
      AI_SERVER_UPSTREAM_HEALTH_INTERVAL: "0",
      UPSTREAM_TEST_RIGHT_KEY: PEER_KEY,
      UPSTREAM_TEST_WRONG_KEY: WRONG_KEY,
    });
    const endpoint = (variable: string) => ({ endpoints: [{ url: relay.url, model: "scripted", api_key_env: variable }] });
    for (const [name, variable] of [["right", "UPSTREAM_TEST_RIGHT_KEY"], ["wrong", "UPSTREAM_TEST_WRONG_KEY"], ["unset", "UPSTREAM_TEST_UNSET_KEY"]]) {
      assert.equal((await createUpstream(server.baseUrl, name!, endpoint(variable!))).status, 200);
    }
    const seen = relay.seen.length;
    const right = await chat(server.baseUrl, "right");
    assert.equal(right.status, 200);
    assert.equal(((await right.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content, SCRIPTED_REPLY);
    const sent = relay.seen.slice(seen);
    assert.deepEqual(
      sent.map((request) => [request.method, request.path, request.authorization]),
      [
        ["GET", "/v1/models", `Bearer ${PEER_KEY}`],
        ["POST", "/v1/chat/completions", `Bearer ${PEER_KEY}`],
      ],
    );

    const bodies: string[] = [];
    const wrong = await chat(server.baseUrl, "wrong");
    assert.equal(wrong.status, 502);
    bodies.push(await wrong.text());
    assert.match(bodies.at(-1)!, /refused this server's credentials/);
    assert.equal(relay.seen.at(-1)?.authorization, `Bearer ${WRONG_KEY}`, "the wrong key was sent, and refused by the endpoint");
    const unset = await chat(server.baseUrl, "unset");
    assert.equal(unset.status, 502);
    bodies.push(await unset.text());
    assert.match(bodies.at(-1)!, /UPSTREAM_TEST_UNSET_KEY \(api_key_env\) is not set on this server/);
    assert.equal(relay.seen.at(-1)?.authorization, `Bearer ${WRONG_KEY}`, "nothing was sent without a key");

    for (const route of ["/api/ps", "/metrics", "/api/tags"]) bodies.push(await (await fetch(`${server.baseUrl}${route}`)).text());
    for (const model of ["right", "wrong", "unset"]) bodies.push(await (await postJson(server.baseUrl, "/api/show", { model })).text());
    assert.match(bodies.join("\n"), /UPSTREAM_TEST_RIGHT_KEY/, "the variable's name is shown");
    await server.waitForLog(/endpoint .* gets no traffic .* refused this server's credentials/);
    const log = JSON.stringify(server.logs);
    for (const key of [PEER_KEY, WRONG_KEY]) {
      assert.ok(!bodies.some((body) => body.includes(key)), "no key in any answer");
      assert.ok(!log.includes(key), "no key in the log");
    }
  } finally {
    await server?.kill();
    await rm(home, { recursive: true, force: true });
  }
});

test("the key is read when a request is sent: a rotated key applies at once", async () => {
  const variable = "UPSTREAM_TEST_ROTATED_KEY";
  const server = await startServer({ config: { loadCooldownMs: "0", upstreamHealthIntervalMs: "0" } });
  try {
    assert.equal((await createUpstream(server.baseUrl, "rotated", { endpoints: [{ url: relay.url, model: "scripted", api_key_env: variable }] })).status, 200);
    process.env[variable] = WRONG_KEY;
    assert.equal((await chat(server.baseUrl, "rotated")).status, 502);
    process.env[variable] = PEER_KEY;
    assert.equal((await chat(server.baseUrl, "rotated")).status, 200);
    assert.equal(relay.seen.at(-1)?.authorization, `Bearer ${PEER_KEY}`);
  } finally {
    delete process.env[variable];
    await server.close();
  }
});
