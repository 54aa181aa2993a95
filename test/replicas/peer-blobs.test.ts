/**
 * Weights on every replica: a replica asked for a model whose weights it lacks fetches them, sha256-verified, from a
 * peer replica (GET /api/blobs/{digest}, admin-scoped) or from the source its pull job recorded, then serves; the
 * request waits, its progress in the log. Real servers on loopback, real llama.cpp inference (one thread) on the
 * fixture models.
 *
 * How a replica comes to lack weights: replicas sharing one database all see a model created on any of them, while
 * each keeps its own blob store. These tests reach that state without the shared database: the model is created on
 * replica B from the same file as on A, then its blob is deleted from B's blob store on disk. (A test on PostgreSQL
 * can create the model once and let the other replica see it.)
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { Ollama } from "ollama";
import { ensureFixtures, JSON_REPLY, SCRIPTED_REPLY, type FixturePaths } from "../fixtures/models.js";
import { startFakeInternet, type FakeInternet } from "../helpers/fake-internet.js";
import { sha256File } from "../helpers/start-server.js";
import { pull, startPullServer, waitFor, type PullServer } from "../pull/pull-helpers.js";
import { bearer, blobPath, createOn, FakePeer, INFO, REPLICA_KEY, startReplica, storedDigest, WARN, type Replica } from "./replica-helpers.js";

const hi = [{ role: "user", content: "Hi" }];
let fixtures: FixturePaths;
let a: Replica;
let b: Replica;
let peer: FakePeer;
const digests: Record<string, string> = {};

before(async () => {
  fixtures = await ensureFixtures();
  peer = await FakePeer.start();
  a = await startReplica();
  // B asks the fake peer first, then A: the fake one shows what a misbehaving peer does to B.
  b = await startReplica({ peers: `${peer.url}, ${a.baseUrl}/` });
  for (const [name, file] of [["scripted", fixtures.chat], ["json", fixtures.json]] as const) await createOn(a, name, file);
  const onB = { scripted: fixtures.chat, json: fixtures.json, shared: fixtures.toolCall, alone: fixtures.qwenToolCall, resumed: fixtures.thinking, "only-here": fixtures.tiny };
  for (const [name, file] of Object.entries(onB)) {
    digests[name] = await createOn(b, name, file);
    await rm(blobPath(b, digests[name] ?? ""));
  }
  for (const file of [fixtures.json, fixtures.toolCall, fixtures.qwenToolCall, fixtures.thinking]) await peer.add(file);
});

after(async () => {
  await b?.close();
  await a?.close();
  await peer?.close();
});

function ollamaOn(replica: Replica): Ollama {
  return new Ollama({ host: replica.baseUrl, headers: bearer() });
}

/** Loads a model on B (Ollama's empty generate): what makes a replica fetch the weights it lacks. */
function loadOnB(model: string, signal?: AbortSignal): Promise<Response> {
  return fetch(`${b.baseUrl}/api/generate`, { method: "POST", headers: { ...bearer(), "content-type": "application/json" }, body: JSON.stringify({ model, stream: false }), ...(signal && { signal }) });
}

describe("GET /api/blobs/:digest", () => {
  test("streams a blob to an admin key, with its length, ETag and digest; a Range resumes; 404 absent, 400 malformed", async () => {
    const digest = await sha256File(fixtures.chat);
    const whole = await fetch(`${a.baseUrl}/api/blobs/${digest}`, { headers: bearer() });
    assert.equal(whole.status, 200);
    const bytes = Buffer.from(await whole.arrayBuffer());
    assert.equal(whole.headers.get("content-length"), String(bytes.length));
    assert.equal(whole.headers.get("x-content-digest"), digest);
    assert.equal(whole.headers.get("etag"), `"${digest}"`);
    assert.equal(`sha256:${createHash("sha256").update(bytes).digest("hex")}`, digest);

    const part = await fetch(`${a.baseUrl}/api/blobs/${digest}`, { headers: { ...bearer(), range: "bytes=1000-1999" } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), `bytes 1000-1999/${bytes.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), bytes.subarray(1000, 2000));
    const rest = await fetch(`${a.baseUrl}/api/blobs/${digest}`, { headers: { ...bearer(), range: `bytes=${bytes.length - 10}-`, "if-range": `"${digest}"` } });
    assert.deepEqual(Buffer.from(await rest.arrayBuffer()), bytes.subarray(bytes.length - 10));
    const changed = await fetch(`${a.baseUrl}/api/blobs/${digest}`, { headers: { ...bearer(), range: "bytes=10-", "if-range": '"sha256:other"' } });
    assert.equal(changed.status, 200, "If-Range naming another version: the whole blob");
    await changed.arrayBuffer();
    const past = await fetch(`${a.baseUrl}/api/blobs/${digest}`, { headers: { ...bearer(), range: `bytes=${bytes.length}-` } });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get("content-range"), `bytes */${bytes.length}`);

    assert.equal((await fetch(`${a.baseUrl}/api/blobs/sha256:${"0".repeat(64)}`, { headers: bearer() })).status, 404);
    for (const bad of ["sha256:1234", "..%2F..%2Fai-server.db", `sha256-${"0".repeat(63)}g`]) {
      const response = await fetch(`${a.baseUrl}/api/blobs/${bad}`, { headers: bearer() });
      assert.equal(response.status, 400, bad);
      assert.match(((await response.json()) as { error: string }).error, /invalid digest/);
    }
  });

  test("needs an admin key: none → 401, an inference key → 403", async () => {
    const digest = await sha256File(fixtures.chat);
    assert.equal((await fetch(`${a.baseUrl}/api/blobs/${digest}`)).status, 401);
    const made = await fetch(`${a.baseUrl}/api/keys`, { method: "POST", headers: { ...bearer(), "content-type": "application/json" }, body: JSON.stringify({ name: "inference only", scope: "inference" }) });
    const { key } = (await made.json()) as { key: string };
    assert.equal((await fetch(`${a.baseUrl}/api/blobs/${digest}`, { headers: bearer(key) })).status, 403);
  });
});

describe("a replica without a model's weights", () => {
  test("fetches them from a peer, verified, and serves; the log says from where, how much and how fast", async () => {
    peer.mode = "absent";
    const digest = digests.scripted ?? "";
    assert.equal(await storedDigest(b, digest), undefined, "B starts without the weights");
    const reply = await ollamaOn(b).chat({ model: "scripted", messages: hi, options: { temperature: 0 } });
    assert.equal(reply.message.content, SCRIPTED_REPLY);
    assert.equal(await storedDigest(b, digest), digest, "the blob is in B's store, with the right hash");
    assert.ok(a.received.includes(`GET /api/blobs/${digest}`), "fetched from A");
    assert.equal(peer.requestsFor(digest, "HEAD")[0]?.authorization, `Bearer ${REPLICA_KEY}`, "the peer key defaults to the admin key");
    const info = b.logs.filter((line) => line.level === INFO).map((line) => line.msg ?? "");
    assert.ok(info.some((msg) => msg.includes(`weights ${digest} of model "scripted:latest": fetching from peer ${a.baseUrl}`)), "the start");
    assert.ok(info.some((msg) => msg.includes(`not from peer ${peer.url}: does not have it (404)`)), "the peer that had nothing");
    const done = info.find((msg) => msg.includes(`fetched`) && msg.includes(digest));
    assert.match(done ?? "", new RegExp(`fetched \\d+(\\.\\d+)? KiB from peer ${a.baseUrl} in \\d+\\.\\d s \\(.+/s\\), sha256 verified`));
  });

  test("a peer that serves corrupt bytes is refused and the next one used; nothing corrupt is kept", async () => {
    peer.mode = "corrupt";
    const digest = digests.json ?? "";
    const reply = await ollamaOn(b).chat({ model: "json", messages: hi, options: { temperature: 0 } });
    assert.equal(reply.message.content, JSON_REPLY);
    assert.equal(peer.requestsFor(digest, "GET").length, 1, "the corrupt peer was asked first");
    assert.ok(a.received.includes(`GET /api/blobs/${digest}`), "then A");
    assert.equal(await storedDigest(b, digest), digest);
    const warned = b.logs.filter((line) => line.level === WARN).map((line) => line.msg ?? "");
    assert.ok(warned.some((msg) => msg.includes(`not from peer ${peer.url}: sent bytes that hash to sha256:`)), warned.join("\n"));
  });

  test("requests for the same weights share one fetch, which goes on when its client leaves", async () => {
    peer.mode = "slow";
    const shared = digests.shared ?? "";
    const [first, second] = await Promise.all([loadOnB("shared"), loadOnB("shared")]);
    assert.deepEqual([first.status, second.status], [200, 200]);
    assert.equal(peer.requestsFor(shared, "GET").length, 1, "one transfer for both requests");

    const alone = digests.alone ?? "";
    const client = new AbortController();
    const leaving = loadOnB("alone", client.signal).catch((error: unknown) => error);
    await waitFor("the transfer to start", () => peer.requestsFor(alone, "GET").length === 1);
    client.abort();
    assert.ok((await leaving) instanceof Error, "the client left");
    await waitFor("the fetch to finish without its client", async () => (await storedDigest(b, alone)) === alone);
    assert.equal((await loadOnB("alone")).status, 200);
    assert.equal(peer.requestsFor(alone, "GET").length, 1, "no second transfer");
  });

  test("a transfer cut midway resumes with a Range request", async () => {
    peer.mode = "cut";
    const digest = digests.resumed ?? "";
    assert.equal((await loadOnB("resumed")).status, 200);
    const gets = peer.requestsFor(digest, "GET");
    assert.equal(gets.length, 2);
    assert.match(gets[1]?.range ?? "", /^bytes=[1-9]\d*-$/, "the second request asks for the rest");
    assert.equal(await storedDigest(b, digest), digest);
  });

  test("no peer and no recorded source: weights_unavailable with every reason, no cooldown, other models still served", async () => {
    peer.mode = "absent";
    const digest = digests["only-here"] ?? "";
    const ollama = await fetch(`${b.baseUrl}/api/chat`, { method: "POST", headers: { ...bearer(), "content-type": "application/json" }, body: JSON.stringify({ model: "only-here", messages: hi, stream: false }) });
    assert.equal(ollama.status, 503);
    const { error } = (await ollama.json()) as { error: string };
    assert.match(error, new RegExp(`weights ${digest} of model "only-here:latest" are not on this server and could not be fetched`));
    assert.ok(error.includes(`peer ${peer.url}: does not have it (404)`), error);
    assert.ok(error.includes(`peer ${a.baseUrl}: does not have it (404)`), error);
    assert.ok(error.includes("no finished pull job recorded where these weights came from"), error);
    const openai = await fetch(`${b.baseUrl}/v1/chat/completions`, { method: "POST", headers: { ...bearer(), "content-type": "application/json" }, body: JSON.stringify({ model: "only-here", messages: hi }) });
    assert.equal(openai.status, 503);
    assert.equal(((await openai.json()) as { error: { code: string } }).error.code, "weights_unavailable");

    assert.deepEqual(b.app.services.scheduler.status().failedLoads, [], "not a failed load: no cooldown");
    assert.equal((await ollamaOn(b).chat({ model: "scripted", messages: hi, options: { temperature: 0 } })).message.content, SCRIPTED_REPLY);
    // The weights come back (uploaded here): the next request serves at once.
    await createOn(b, "only-here", fixtures.tiny);
    assert.equal((await loadOnB("only-here")).status, 200);
  });

  test("a peer that refuses the key is named in the error (the default key is this replica's own admin key)", async () => {
    const c = await startReplica({ adminKey: "another-admin-key-0123456789abcdefghijklmnopqrstuvwxyz", peers: a.baseUrl });
    try {
      const key = "another-admin-key-0123456789abcdefghijklmnopqrstuvwxyz";
      const digest = await createOn(c, "scripted", fixtures.chat, key);
      await rm(blobPath(c, digest));
      const response = await fetch(`${c.baseUrl}/api/generate`, { method: "POST", headers: { ...bearer(key), "content-type": "application/json" }, body: JSON.stringify({ model: "scripted", stream: false }) });
      assert.equal(response.status, 503);
      const { error } = (await response.json()) as { error: string };
      assert.ok(error.includes(`peer ${a.baseUrl}: refused the key (401)`), error);
    } finally {
      await c.close();
    }
  });
});

describe("the recorded source", () => {
  let internet: FakeInternet;
  let server: PullServer;

  before(async () => {
    internet = await startFakeInternet();
    server = await startPullServer(internet);
  });

  after(async () => {
    await server?.close();
    await internet?.close();
  });

  test("with no peer, a pulled model whose blobs are gone is downloaded again from the Hub, verified, and served", async () => {
    for (const model of ["hf.co/owner/Scripted-GGUF", "hf.co/owner/Split-GGUF:Q8_0"]) {
      const { lines } = await pull(server.baseUrl, model);
      assert.equal(lines[lines.length - 1]?.status, "success", model);
      const record = server.app.services.store.require(model);
      const parts = record.splitDigests ?? [record.modelDigest];
      for (const digest of parts) await rm(server.app.services.store.blobs.pathOf(digest));
      const before = internet.cdn.requests.length;

      const reply = await new Ollama({ host: server.baseUrl }).chat({ model, messages: hi, options: { temperature: 0 } });
      assert.equal(reply.message.content, SCRIPTED_REPLY, model);
      for (const digest of parts) assert.equal(await sha256File(server.app.services.store.blobs.pathOf(digest)), digest, `${model}: ${digest} stored again`);
      assert.ok(internet.cdn.requests.length > before, `${model}: downloaded again`);
    }
  });
});
