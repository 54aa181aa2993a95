/**
 * Rate and concurrency limits counted in Redis (AI_SERVER_REDIS_URL), against a real redis-server (the distribution's
 * binary, started on a free port in a temp directory; the tests are skipped, saying why, where it is not installed):
 * the counter alone (rpm, tpm, max_parallel, the header states, expiring keys, leases that end when their server stops
 * extending them, failing open while Redis is away and counting again once it is back), then two real servers on one
 * Redis that enforce one open-server limit per client address between them, and a server that keeps serving when
 * Redis stops.
 *
 * The servers run the fake engine: the limits are counted by the HTTP hook before any model runs, so what a model
 * generates does not matter here, only that a request can be kept running (a slow endless stream) while another
 * arrives; real inference is tested elsewhere.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Limits } from "../../src/auth/principal.js";
import type { Admission } from "../../src/limits/limit-counter.js";
import { principalKeys, RedisLimitCounter, type RedisLimitCounterOptions } from "../../src/limits/redis-limit-counter.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { writeFakeModel } from "../helpers/gguf-files.js";
import { parsePrometheusText, valueOf } from "../helpers/prometheus-text.js";
import { RedisServer, redisSkipReason } from "../helpers/redis-server.js";
import { postJson, startServer, type TestServer } from "../helpers/start-server.js";

const skip = redisSkipReason();
const user = [{ role: "user", content: "Hi" }];
const openaiChat = { model: "chat", messages: user };
const ollamaChat = { model: "chat", messages: user, stream: false };

/** Polls `check` until it returns true, failing after `ms` (a wait for an event, not a timing assertion). */
async function eventually(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

describe("the Redis counter", { skip }, () => {
  let redis: RedisServer;
  const counters: RedisLimitCounter[] = [];
  let principals = 0;

  /** A counter on the test Redis ("a replica"); closed after the tests. */
  function counter(options: Partial<RedisLimitCounterOptions> = {}): RedisLimitCounter {
    const made = new RedisLimitCounter({ url: redis.url(), ...options });
    counters.push(made);
    return made;
  }

  /** A principal no other test touches. */
  function principal(): string {
    return `key:test-${++principals}`;
  }

  async function ttl(key: string): Promise<number> {
    return Number((await redis.command("PTTL", key)).slice(1));
  }

  before(async () => {
    redis = await RedisServer.start();
  });

  after(async () => {
    await Promise.all(counters.map((c) => c.close()));
    await redis?.close();
  });

  test("rpm: N requests a minute between two replicas, the (N+1)th refused on either with its wait and the header states", async () => {
    const [a, b] = [counter(), counter()];
    const who = principal();
    const limits: Limits = { rpm: 3 };
    const remaining: number[] = [];
    for (const replica of [a, b, a]) {
      const admission = await replica.take(who, limits);
      assert.equal(admission.admitted, true);
      remaining.push(admission.requests!.remaining);
      assert.equal(admission.requests!.limit, 3);
    }
    assert.deepEqual(remaining, [2, 1, 0]);
    for (const replica of [b, a]) {
      const refused = await replica.take(who, limits);
      assert.equal(refused.admitted, false);
      assert.ok(!refused.admitted && refused.limit === "rpm");
      // One request comes back every 20 s at 3 a minute
      assert.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= 20_000, `retry after ${refused.retryAfterMs} ms`);
      assert.equal(refused.requests!.remaining, 0);
      assert.ok(refused.requests!.resetMs > 40_000 && refused.requests!.resetMs <= 60_000, `whole again in ${refused.requests!.resetMs} ms`);
    }
    // The budget expires once it would be whole again (a minute at most, and a second's margin)
    const budgetTtl = await ttl(principalKeys(who).budget);
    assert.ok(budgetTtl > 0 && budgetTtl <= 61_000, `budget expires in ${budgetTtl} ms`);
  });

  test("racing replicas never over-admit: 40 requests at once over four replicas, rpm 5 and max_parallel 3", async () => {
    const replicas = [counter(), counter(), counter(), counter()];
    const rpmOnly = principal();
    const parallelOnly = principal();
    const rpm = await Promise.all(Array.from({ length: 40 }, (_, i) => replicas[i % 4]!.take(rpmOnly, { rpm: 5 })));
    assert.equal(rpm.filter((a) => a.admitted).length, 5);
    const parallel = await Promise.all(Array.from({ length: 40 }, (_, i) => replicas[i % 4]!.take(parallelOnly, { maxParallel: 3 })));
    assert.equal(parallel.filter((a) => a.admitted).length, 3);
  });

  test("tpm: tokens charged on one replica refuse the next request on the other until the debt is repaid", async () => {
    const [a, b] = [counter(), counter()];
    const who = principal();
    const limits: Limits = { tpm: 100 };
    const first = await a.take(who, limits);
    assert.equal(first.admitted, true);
    assert.deepEqual(first.tokens, { limit: 100, remaining: 100, resetMs: 0 });
    a.charge(who, limits, 150);
    await eventually("the charge is counted", async () => (await b.take(who, limits)).admitted === false);
    const refused = (await b.take(who, limits)) as Extract<Admission, { admitted: false }>;
    assert.equal(refused.limit, "tpm");
    assert.equal(refused.tokens!.remaining, 0);
    // 50 tokens of debt and one token to start: 51 tokens at 100 a minute, 30.6 s (less the time the test took)
    assert.ok(refused.retryAfterMs > 25_000 && refused.retryAfterMs <= 30_600, `retry after ${refused.retryAfterMs} ms`);
    assert.ok(refused.tokens!.resetMs > refused.retryAfterMs, "whole again later than one token");
  });

  test("max_parallel: a slot held on one replica refuses the other until released", async () => {
    const [a, b] = [counter(), counter()];
    const who = principal();
    const limits: Limits = { maxParallel: 2 };
    assert.equal((await a.take(who, limits)).admitted, true);
    assert.equal((await b.take(who, limits)).admitted, true);
    const refused = await a.take(who, limits);
    assert.deepEqual(refused, { admitted: false, limit: "maxParallel", retryAfterMs: 1000 });
    assert.equal(Number((await redis.command("ZCARD", principalKeys(who).running)).slice(1)), 2);
    b.release(who);
    await eventually("b's slot is free for a", async () => (await a.take(who, limits)).admitted);
    assert.equal((await b.take(who, limits)).admitted, false, "both slots held again");
  });

  test("release ends the slot its admission names: one request of a principal ending does not end another's lease", async () => {
    const a = counter();
    const who = principal();
    const limits: Limits = { maxParallel: 2 };
    const first = await a.take(who, limits);
    const second = await a.take(who, limits);
    assert.ok(first.admitted && second.admitted && first.holder !== undefined && second.holder !== undefined);
    assert.notEqual(first.holder, second.holder);
    // The first one ends while the second runs on (the most recent holder is not the one to drop)
    a.release(who, first.holder);
    const { running } = principalKeys(who);
    await eventually("the first request's slot is gone", async () => (await redis.command("ZCARD", running)) === ":1");
    // ZSCORE's first reply line: "$-1" when the holder is not in the set
    assert.equal(await redis.command("ZSCORE", running, first.holder), "$-1");
    assert.notEqual(await redis.command("ZSCORE", running, second.holder), "$-1", "the running request keeps its lease");
  });

  test("keys are namespaced and expire: the budget a second after it is whole again, the running set after its leases", async () => {
    const a = counter({ leaseMs: 30_000 });
    const who = principal();
    await a.take(who, { rpm: 60, maxParallel: 1 });
    const { budget, running } = principalKeys(who);
    assert.match(budget, /^ai-server:limits:\{key:test-\d+\}:budget$/);
    const budgetTtl = await ttl(budget);
    // One request spent of 60 a minute: whole again in a second
    assert.ok(budgetTtl > 0 && budgetTtl <= 2000, `budget expires in ${budgetTtl} ms`);
    const runningTtl = await ttl(running);
    assert.ok(runningTtl > 29_000 && runningTtl <= 31_000, `running set expires in ${runningTtl} ms`);
    a.release(who);
    await eventually("the released slot is gone", async () => (await redis.command("ZCARD", running)) === ":0");
    // A principal with max_parallel alone keeps no budget
    const other = principal();
    await a.take(other, { maxParallel: 3 });
    assert.equal(await redis.command("EXISTS", principalKeys(other).budget), ":0");
  });

  test("a request whose server stopped extending its lease stops counting when the lease ends", async () => {
    const dying = counter({ leaseMs: 800 });
    const survivor = counter({ leaseMs: 800 });
    const who = principal();
    const limits: Limits = { maxParallel: 1 };
    assert.equal((await dying.take(who, limits)).admitted, true);
    assert.equal((await survivor.take(who, limits)).admitted, false);
    // Extended every third of the lease: still held well past one lease
    await sleep(2000);
    assert.equal((await survivor.take(who, limits)).admitted, false, "a running request keeps its slot past its first lease");
    // The server goes away without releasing (as a killed one would): nothing extends the lease any more
    await dying.close();
    await eventually("the dead server's slot is dropped", async () => (await survivor.take(who, limits)).admitted);
  });

  test("Redis away: admitted uncounted, one warning with the reason, failures counted; counted again once it is back", async () => {
    const own = await RedisServer.start();
    const warnings: string[] = [];
    let failures = 0;
    const a = new RedisLimitCounter({ url: own.url(), warn: (message) => warnings.push(message), failed: () => failures++ });
    try {
      const who = principal();
      const limits: Limits = { rpm: 1, maxParallel: 1 };
      assert.equal((await a.take(who, limits)).admitted, true);
      assert.equal((await a.take(who, limits)).admitted, false);
      await own.stop();
      for (let i = 0; i < 3; i++) assert.deepEqual(await a.take(who, limits), { admitted: true });
      a.charge(who, { tpm: 10 }, 5);
      a.release(who);
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0]!, /^rate limits: Redis at redis:\/\/127\.0\.0\.1:\d+\/0 failed: .*(ECONNREFUSED|closed|connect|Socket)/i);
      assert.match(warnings[0]!, /admitted without being counted/);
      assert.ok(failures >= 3, `${failures} failures counted`);
      // A new Redis has neither the old counts nor the scripts: loaded again, counting starts afresh
      await own.start();
      await eventually("requests are counted again", async () => (await a.take(who, limits)).requests !== undefined);
      assert.match(warnings.at(-1)!, /answers again/);
      const refused = await a.take(who, limits);
      assert.equal(refused.admitted, false);
    } finally {
      await a.close();
      await own.close();
    }
  });
});

describe("two servers on one Redis", { skip }, () => {
  let redis: RedisServer;

  /** A real server ("replica") on the fake engine with model "chat", created through the store (spends no request). */
  async function replica(config: Record<string, unknown>, engine = new FakeEngine(), observe?: (server: TestServer["app"]) => void): Promise<TestServer> {
    const server = await startServer({ engine, config, ...(observe ? { beforeListen: observe } : {}) });
    const file = path.join(server.home, "chat.gguf");
    await writeFakeModel(file);
    const { store } = server.app.services;
    await store.create({ name: "chat", modelDigest: (await store.blobs.importFile(file)).digest });
    return server;
  }

  before(async () => {
    redis = await RedisServer.start();
  });

  after(() => redis?.close());

  test("AI_SERVER_OPEN_RPM=3 holds across both: three requests spread over them pass, the fourth gets 429 on either", async () => {
    const config = { redisUrl: redis.url(1), openRpm: 3 };
    const [a, b] = [await replica(config), await replica(config)];
    try {
      const remaining: Array<string | null> = [];
      for (const [server, body, route] of [[a, openaiChat, "/v1/chat/completions"], [b, ollamaChat, "/api/chat"], [a, openaiChat, "/v1/chat/completions"]] as const) {
        const response = await postJson(server.baseUrl, route, body);
        assert.equal(response.status, 200, await response.text());
        assert.equal(response.headers.get("x-ratelimit-limit-requests"), "3");
        remaining.push(response.headers.get("x-ratelimit-remaining-requests"));
      }
      assert.deepEqual(remaining, ["2", "1", "0"]);
      for (const server of [b, a]) {
        const fourth = await postJson(server.baseUrl, "/v1/chat/completions", openaiChat);
        assert.equal(fourth.status, 429);
        const waitMs = Number(fourth.headers.get("retry-after-ms"));
        assert.ok(waitMs > 0 && waitMs <= 20_000, `one request back within 20 s (${waitMs} ms)`);
        assert.equal(fourth.headers.get("retry-after"), String(Math.ceil(waitMs / 1000)));
        assert.equal(fourth.headers.get("x-ratelimit-limit-requests"), "3");
        assert.equal(fourth.headers.get("x-ratelimit-remaining-requests"), "0");
        assert.match(((await fourth.json()) as { error: { message: string } }).error.message, /rate limit of 3 requests per minute reached for client/);
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test("AI_SERVER_OPEN_MAX_PARALLEL=1 holds across both: a stream running on one refuses a request on the other until it ends", async () => {
    const config = { redisUrl: redis.url(2), openMaxParallel: 1 };
    const engine = new FakeEngine();
    const [a, b] = [await replica(config, engine), await replica(config)];
    try {
      engine.script = { tokens: ["tick "], endless: true, delayMs: 20 };
      const client = new AbortController();
      const stream = await postJson(a.baseUrl, "/api/chat", { model: "chat", messages: user }, { signal: client.signal });
      assert.equal(stream.status, 200);
      const reader = stream.body!.getReader();
      assert.match(new TextDecoder().decode((await reader.read()).value), /tick/);

      const refused = await postJson(b.baseUrl, "/v1/chat/completions", openaiChat);
      assert.equal(refused.status, 429);
      assert.equal(refused.headers.get("retry-after"), "1");
      assert.match(((await refused.json()) as { error: { message: string } }).error.message, /already has 1 request\(s\) running/);

      client.abort();
      await engine.waitForAbort(1);
      await eventually("the slot freed on one server is free on the other", async () => {
        const response = await postJson(b.baseUrl, "/v1/chat/completions", openaiChat);
        if (response.status !== 429) assert.equal(response.status, 200, await response.text());
        else await response.body?.cancel();
        return response.status === 200;
      });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test("Redis stopped: requests are still served, a warning is logged and the failures are counted in /metrics", async () => {
    const own = await RedisServer.start();
    const warnings: string[] = [];
    const server = await replica({ redisUrl: own.url(), openRpm: 1 }, new FakeEngine(), (app) => {
      // The log is silent in tests: its warnings are caught where the server writes them
      app.http.log.warn = ((message: string) => void warnings.push(message)) as typeof app.http.log.warn;
    });
    try {
      assert.equal((await postJson(server.baseUrl, "/api/chat", ollamaChat)).status, 200);
      assert.equal((await postJson(server.baseUrl, "/api/chat", ollamaChat)).status, 429, "counted while Redis is there");
      await own.stop();
      for (let i = 0; i < 3; i++) {
        const response = await postJson(server.baseUrl, "/api/chat", ollamaChat);
        assert.equal(response.status, 200, "served uncounted");
        assert.equal(response.headers.get("x-ratelimit-limit-requests"), null, "no budget to tell");
      }
      assert.equal(warnings.filter((w) => /rate limits: Redis at .* failed/.test(w)).length, 1, warnings.join("\n"));
      const metrics = parsePrometheusText(await (await fetch(`${server.baseUrl}/metrics`)).text());
      assert.ok((valueOf(metrics, "ai_server_rate_limit_store_errors_total") ?? 0) >= 3);
    } finally {
      await server.close();
      await own.close();
    }
  });
});
