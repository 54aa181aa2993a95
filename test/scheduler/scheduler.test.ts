/**
 * The scheduler's decisions, driven through its public API with a scripted engine (test-engine.ts): memory
 * admission and eviction order, keep-alive, the queue, timeouts, cooldowns, one load at a time, hot swap.
 * Real inference over HTTP is in real-scheduling.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { InsufficientMemoryError, ModelLoadError, QueueFullError, RequestCancelledError, RequestTimeoutError } from "../../src/domain/errors.js";
import type { Lease } from "../../src/scheduler/scheduler.js";
import { forever, record, scheduler, TestEngine, until } from "./test-engine.js";

const drain = async (lease: Lease): Promise<string> => {
  let text = "";
  for await (const event of lease.model.complete({ prompt: "x", raw: true, sampling: {}, format: { type: "text" } }, forever)) {
    if (event.type === "text") text += event.text;
  }
  return text;
};

const loaded = (s: ReturnType<typeof scheduler>): string[] => s.running().map((r) => r.record.modelDigest).sort();

test("models load side by side while they fit; the least recently used idle one is evicted for a new one", async () => {
  const engine = new TestEngine();
  const s = scheduler(engine, { memory: { budget: { ram: 250 }, headroom: 0 } });
  (await s.acquire(record("a"), {}, forever)).release();
  (await s.acquire(record("b"), {}, forever)).release();
  assert.deepEqual(loaded(s), ["a", "b"]);
  (await s.acquire(record("a"), {}, forever)).release(); // a is now more recently used than b
  (await s.acquire(record("c"), {}, forever)).release();
  assert.deepEqual(loaded(s), ["a", "c"]);
  assert.deepEqual(engine.events, ["load a", "load b", "unload b", "load c"]);
  await s.close();
});

test("a model in use is never evicted: the new load waits for it to go idle", async () => {
  const engine = new TestEngine();
  engine.estimates.set("big", { ram: 200, vram: 0 });
  const s = scheduler(engine, { memory: { budget: { ram: 250 }, headroom: 0 } });
  const busy = await s.acquire(record("a"), {}, forever);
  let got: Lease | undefined;
  const waiting = s.acquire(record("big"), {}, forever).then((lease) => (got = lease));
  await until(() => s.status().loading?.waiting !== undefined, "the load waits for memory");
  assert.match(s.status().loading?.waiting ?? "", /in use/);
  assert.equal(got, undefined);
  assert.deepEqual(loaded(s), ["a"]);
  busy.release();
  (await waiting).release();
  assert.deepEqual(engine.events, ["load a", "unload a", "load big"]);
  await s.close();
});

test("evicts only what is needed, in LRU order, and skips idle models that free nothing in the short pool", async () => {
  const engine = new TestEngine();
  engine.estimates.set("gpu1", { ram: 0, vram: 100 });
  engine.estimates.set("gpu2", { ram: 0, vram: 100 });
  engine.estimates.set("cpu", { ram: 100, vram: 0 });
  engine.capacityBytes = { ram: 1000, vram: 200 };
  const s = scheduler(engine);
  for (const m of ["gpu1", "cpu", "gpu2"]) (await s.acquire(record(m), {}, forever)).release();
  (await s.acquire(record("gpu3"), {}, forever)).release(); // estimate defaults to 100 RAM: fits without eviction
  engine.estimates.set("gpu4", { ram: 0, vram: 100 });
  (await s.acquire(record("gpu4"), {}, forever)).release();
  assert.deepEqual(loaded(s), ["cpu", "gpu2", "gpu3", "gpu4"], "gpu1 (LRU with VRAM) went; cpu (older than gpu2, no VRAM) stayed");
  await s.close();
});

test("a model that can never fit fails at once with what it needs and the budget, evicting nothing", async () => {
  const engine = new TestEngine();
  engine.estimates.set("huge", { ram: 5 * 2 ** 30, vram: 0 });
  const s = scheduler(engine, { memory: { budget: { ram: 4 * 2 ** 30 }, headroom: 2 ** 30 } });
  (await s.acquire(record("a"), {}, forever)).release();
  await assert.rejects(s.acquire(record("huge"), {}, forever), (error: unknown) => {
    assert.ok(error instanceof InsufficientMemoryError);
    assert.match(error.message, /"huge:latest" needs 5\.00 GiB of RAM .* budget is 3\.00 GiB of RAM \(after 1\.00 GiB of headroom/);
    return true;
  });
  assert.deepEqual(loaded(s), ["a"]);
  assert.equal(engine.loadCount("huge"), 0);
  await s.close();
});

test("the loaded-models cap evicts the least recently used idle model", async () => {
  const engine = new TestEngine();
  const s = scheduler(engine, { maxLoadedModels: 2 });
  for (const m of ["a", "b", "a", "c"]) (await s.acquire(record(m), {}, forever)).release();
  assert.deepEqual(loaded(s), ["a", "c"]);
  await s.close();
});

test("keep-alive: the countdown starts when the last request ends; 0 unloads at once; -1 never; per request", async () => {
  const engine = new TestEngine();
  const s = scheduler(engine, { defaultKeepAliveMs: 30 });
  const lease = await s.acquire(record("a"), {}, forever);
  assert.equal(s.running()[0]?.expiresAt, null, "no countdown while in use");
  lease.release();
  const expiresAt = s.running()[0]?.expiresAt;
  assert.ok(expiresAt && expiresAt.getTime() > Date.now());
  await until(() => loaded(s).length === 0, "a expires");

  (await s.acquire(record("b"), { keepAliveMs: -1 }, forever)).release();
  await sleep(60);
  assert.deepEqual(loaded(s), ["b"], "kept for ever");
  (await s.acquire(record("b"), {}, forever)).release();
  assert.ok(s.running()[0]?.expiresAt, "a request without keep_alive sets the default again, as in Ollama");
  (await s.acquire(record("b"), { keepAliveMs: 0 }, forever)).release();
  await until(() => loaded(s).length === 0, "b unloads right after the request");

  (await s.acquire(record("c"), { pin: true }, forever)).release(); // a preload
  (await s.acquire(record("c"), {}, forever)).release();
  await sleep(60);
  assert.deepEqual(loaded(s), ["c"], "a pinned model stays without keep_alive");
  assert.equal(s.running()[0]?.expiresAt, null);
  const busy = await s.acquire(record("c"), {}, forever);
  await s.unload(record("c")); // returns at once: c is busy
  const next = s.acquire(record("c"), {}, forever);
  assert.deepEqual(loaded(s), ["c"], "loaded until its request finishes");
  busy.release();
  await until(() => engine.events.includes("unload c"), "c unloads once idle");
  (await next).release(); // a request after the unload loads it afresh
  assert.deepEqual(engine.events, ["load a", "unload a", "load b", "unload b", "load c", "unload c", "load c"]);
  await s.close();
});

test("requests beyond the free slots wait in FIFO order; past maxQueue they get QueueFullError with Retry-After", async () => {
  const engine = new TestEngine();
  const s = scheduler(engine, { maxQueue: 2 });
  const first = await s.acquire(record("a"), {}, forever);
  const order: number[] = [];
  const second = s.acquire(record("a"), {}, forever).then((l) => (order.push(2), l));
  const third = s.acquire(record("a"), {}, forever).then((l) => (order.push(3), l));
  await until(() => s.status().waiting === 2, "two wait");
  await assert.rejects(s.acquire(record("a"), {}, forever), (error: unknown) => {
    assert.ok(error instanceof QueueFullError);
    assert.match(error.headers["retry-after"] ?? "", /^\d+$/);
    return true;
  });
  first.release();
  (await second).release();
  (await third).release();
  assert.deepEqual(order, [2, 3]);
  assert.equal(s.status().waiting, 0);
  await s.close();
});

test("a request that leaves the queue frees its place at once", async () => {
  const engine = new TestEngine();
  const s = scheduler(engine, { maxQueue: 1 });
  const first = await s.acquire(record("a"), {}, forever);
  const client = new AbortController();
  const queued = s.acquire(record("a"), {}, client.signal);
  await until(() => s.running()[0]?.queued === 1, "queued");
  client.abort();
  await assert.rejects(queued, RequestCancelledError);
  assert.equal(s.status().waiting, 0);
  assert.equal(s.running()[0]?.queued, 0);
  const next = s.acquire(record("a"), {}, forever);
  first.release();
  (await next).release();
  await s.close();
});

test("the request timeout ends a wait for a slot, and a generation, with RequestTimeoutError; the slot is freed", async () => {
  const engine = new TestEngine();
  const s = scheduler(engine, { requestTimeoutMs: 60 });
  const holder = await s.acquire(record("a"), {}, forever);
  await assert.rejects(s.acquire(record("a"), {}, forever), (error: unknown) => {
    assert.ok(error instanceof RequestTimeoutError, String(error));
    assert.match(error.message, /timed out after 60ms \(waiting for a slot\)/);
    return true;
  });
  holder.release();

  const lease = await s.acquire(record("a"), {}, forever);
  const started = Date.now();
  await assert.rejects(
    (async () => {
      for await (const _ of lease.model.complete({ prompt: "x", raw: true, sampling: { maxTokens: 1000 }, format: { type: "text" } }, forever));
    })(),
    (error: unknown) => error instanceof RequestTimeoutError && /generating/.test(error.message),
  );
  assert.ok(Date.now() - started < 1000, "stopped at the timeout, not after 1000 tokens");
  lease.release();
  assert.equal(s.running()[0]?.active, 0);
  await s.close();
});

test("a failed load is remembered: concurrent and later requests fail fast with its reason, without new attempts", async () => {
  const engine = new TestEngine();
  engine.failures.set("bad", new ModelLoadError("unknown model architecture: 'foo'"));
  let now = 1_000_000;
  const s = scheduler(engine, { loadCooldownMs: 30_000, now: () => now });
  const storm = await Promise.allSettled(Array.from({ length: 8 }, () => s.acquire(record("bad"), {}, forever)));
  assert.ok(storm.every((r) => r.status === "rejected" && /unknown model architecture/.test(String(r.reason))));
  for (let i = 0; i < 5; i++) {
    await assert.rejects(s.acquire(record("bad"), {}, forever), /unknown model architecture: 'foo' \(load failed 0ms ago; next attempt in 30s\)/);
  }
  assert.equal(engine.loadCount("bad"), 1);
  assert.deepEqual(
    s.status().failedLoads.map((f) => [f.model, f.retryAt.getTime()]),
    [["bad:latest", 1_030_000]],
  );
  now += 30_001;
  engine.failures.delete("bad");
  (await s.acquire(record("bad"), {}, forever)).release();
  assert.equal(engine.loadCount("bad"), 2);
  assert.deepEqual(s.status().failedLoads, []);
  await s.close();
});

test("loads run one at a time; requests for a loaded model keep flowing while another loads", async () => {
  const engine = new TestEngine();
  const s = scheduler(engine);
  (await s.acquire(record("ready"), {}, forever)).release();
  const open = engine.hold("slow");
  const slow = s.acquire(record("slow"), {}, forever);
  const next = s.acquire(record("next"), {}, forever);
  await until(() => engine.loading === 1, "slow is loading");
  for (let i = 0; i < 3; i++) assert.equal(await drain(await s.acquire(record("ready"), {}, forever).then((l) => (setImmediate(() => l.release()), l))), "t0t1t2");
  assert.equal(engine.loadCount("next"), 0, "next waits for slow's load");
  open();
  (await slow).release();
  (await next).release();
  assert.equal(engine.maxConcurrentLoads, 1);
  await s.close();
});

test("a load whose every waiter left is cancelled, and frees its place", async () => {
  const engine = new TestEngine();
  const s = scheduler(engine);
  engine.hold("a");
  const client = new AbortController();
  const waiting = s.acquire(record("a"), {}, client.signal);
  await until(() => engine.loading === 1, "loading");
  client.abort();
  await assert.rejects(waiting, RequestCancelledError);
  await until(() => engine.loading === 0, "the engine's load was aborted");
  assert.deepEqual(loaded(s), []);
  assert.deepEqual(s.status().failedLoads, [], "a cancellation is not a failure");
  await s.close();
});

test("hot swap: new weights under a loaded name load beside the old, which finish their requests and then unload", async () => {
  const engine = new TestEngine();
  const live = new Set(["v1"]);
  const s = scheduler(engine, { isReferenced: (digest) => live.has(digest) });
  const old = await s.acquire(record("v1", {}, "m:latest"), {}, forever);
  live.delete("v1");
  live.add("v2"); // "m" re-created with new weights
  const fresh = await s.acquire(record("v2", {}, "m:latest"), {}, forever);
  assert.deepEqual(loaded(s), ["v1", "v2"]);
  assert.equal(await drain(old), "t0t1t2", "the old weights finish their request");
  old.release();
  await until(() => engine.events.includes("unload v1"), "v1 unloads once idle");
  fresh.release();
  assert.deepEqual(loaded(s), ["v2"]);
  await s.close();
});

test("aliases share one instance (same weights); num_parallel sets the slots; another num_ctx replaces it when idle", async () => {
  const engine = new TestEngine();
  const s = scheduler(engine);
  const a = await s.acquire(record("w", { num_parallel: 2 }, "first:latest"), {}, forever);
  const b = await s.acquire(record("w", { num_parallel: 2 }, "second:latest"), {}, forever);
  assert.equal(engine.loads.length, 1);
  assert.equal(engine.loads[0]?.slots, 2);
  assert.equal(s.running()[0]?.active, 2);
  a.release();
  b.release();
  (await s.acquire(record("w", { num_parallel: 2 }), { contextSize: 256 }, forever)).release();
  assert.deepEqual(engine.loads.map((l) => l.contextSize), [512, 256]);
  assert.deepEqual(engine.events, ["load w", "unload w", "load w"]);
  await s.close();
});
