/** The in-memory token buckets and the header formats, on a clock the tests drive (no waiting, nothing timed). */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { durationText, rateLimitHeaders } from "../../src/limits/headers.js";
import type { Admission } from "../../src/limits/limit-counter.js";
import { MemoryLimitCounter, PARALLEL_RETRY_MS } from "../../src/limits/memory-limit-counter.js";

function counterAt(start = 1_000_000): { counter: MemoryLimitCounter; advance(ms: number): void } {
  let now = start;
  return { counter: new MemoryLimitCounter({ now: () => now }), advance: (ms) => void (now += ms) };
}

function refused(admission: Admission): Extract<Admission, { admitted: false }> {
  assert.equal(admission.admitted, false, "refused");
  return admission as Extract<Admission, { admitted: false }>;
}

describe("requests per minute", () => {
  test("a burst up to the limit, then one request each limit-th of a minute", () => {
    const { counter, advance } = counterAt();
    const limits = { rpm: 2 };
    const first = counter.take("k", limits);
    assert.deepEqual(first, { admitted: true, requests: { limit: 2, remaining: 1, resetMs: 30_000 } });
    counter.release("k");
    assert.deepEqual(counter.take("k", limits), { admitted: true, requests: { limit: 2, remaining: 0, resetMs: 60_000 } });
    counter.release("k");
    const third = refused(counter.take("k", limits));
    assert.equal(third.limit, "rpm");
    assert.equal(third.retryAfterMs, 30_000);
    advance(10_000);
    assert.equal(refused(counter.take("k", limits)).retryAfterMs, 20_000, "the wait shrinks as time passes");
    advance(20_000);
    assert.equal(counter.take("k", limits).admitted, true, "admitted once the wait is over");
    assert.equal(refused(counter.take("k", limits)).retryAfterMs, 30_000, "and then at the limit's pace, no burst");
  });

  test("refused requests spend nothing; principals are counted apart", () => {
    const { counter, advance } = counterAt();
    counter.take("a", { rpm: 1 });
    for (let i = 0; i < 5; i++) refused(counter.take("a", { rpm: 1 }));
    assert.equal(counter.take("b", { rpm: 1 }).admitted, true, "another principal has its own budget");
    advance(60_000);
    assert.equal(counter.take("a", { rpm: 1 }).admitted, true, "a minute after the one admitted request");
  });
});

describe("tokens per minute", () => {
  test("charged at the end; new requests refused while the budget is spent, until the debt is repaid", () => {
    const { counter, advance } = counterAt();
    const limits = { tpm: 100 };
    assert.deepEqual(counter.take("k", limits), { admitted: true, tokens: { limit: 100, remaining: 100, resetMs: 0 } });
    counter.charge("k", limits, 60);
    counter.release("k");
    assert.deepEqual(counter.take("k", limits).tokens, { limit: 100, remaining: 40, resetMs: 36_000 });
    counter.charge("k", limits, 90); // more than was left: a debt of 50
    counter.release("k");
    const over = refused(counter.take("k", limits));
    assert.equal(over.limit, "tpm");
    assert.equal(over.retryAfterMs, 30_600, "until 1 token is back: 51 tokens at 100 a minute");
    assert.deepEqual(over.tokens, { limit: 100, remaining: 0, resetMs: 90_000 });
    advance(30_600);
    assert.equal(counter.take("k", limits).admitted, true);
  });

  test("both limits: the longer wait wins and names its limit", () => {
    const { counter } = counterAt();
    const limits = { rpm: 60, tpm: 10 };
    counter.take("k", limits);
    counter.charge("k", limits, 20);
    counter.release("k");
    const over = refused(counter.take("k", limits));
    assert.equal(over.limit, "tpm");
    assert.equal(over.retryAfterMs, 66_000);
  });
});

describe("requests running at once", () => {
  test("max_parallel slots are held until released, whatever the per-minute budgets", () => {
    const { counter } = counterAt();
    const limits = { maxParallel: 2 };
    assert.deepEqual(counter.take("k", limits), { admitted: true });
    assert.deepEqual(counter.take("k", limits), { admitted: true });
    const third = refused(counter.take("k", limits));
    assert.equal(third.limit, "maxParallel");
    assert.equal(third.retryAfterMs, PARALLEL_RETRY_MS);
    counter.release("k");
    assert.equal(counter.take("k", limits).admitted, true, "a released slot is taken again");
  });

  test("a refusal for max_parallel spends no request of the minute", () => {
    const { counter } = counterAt();
    const limits = { rpm: 2, maxParallel: 1 };
    counter.take("k", limits);
    assert.equal(refused(counter.take("k", limits)).limit, "maxParallel");
    counter.release("k");
    assert.deepEqual(counter.take("k", limits), { admitted: true, requests: { limit: 2, remaining: 0, resetMs: 60_000 } });
  });
});

describe("memory", () => {
  test("idle principals (budgets whole again, nothing running) are dropped as others arrive; busy ones kept", () => {
    const { counter, advance } = counterAt();
    counter.take("busy", { maxParallel: 1 });
    for (let i = 0; i < 1000; i++) counter.take(`client-${i}`, { rpm: 10 }), counter.release(`client-${i}`);
    assert.equal(counter.size, 1001);
    advance(6_000); // one request back at 10 a minute: every budget is whole again
    for (let i = 0; i < 1000; i++) counter.take(`later-${i}`, { rpm: 10 }), counter.release(`later-${i}`);
    assert.ok(counter.size <= 1001, `entries: ${counter.size}`);
    assert.ok(refused(counter.take("busy", { maxParallel: 1 })), "the busy principal still holds its slot");
  });

  test("an entry in debt is kept until the debt is repaid", () => {
    const { counter, advance } = counterAt();
    counter.take("k", { tpm: 10 });
    counter.charge("k", { tpm: 10 }, 30);
    counter.release("k");
    advance(60_000);
    for (let i = 0; i < 10; i++) counter.take(`other-${i}`, { rpm: 10 });
    assert.equal(refused(counter.take("k", { tpm: 10 })).limit, "tpm", "still 20 tokens in debt");
  });
});

describe("headers", () => {
  test("OpenAI's duration format", () => {
    assert.equal(durationText(0), "0s");
    assert.equal(durationText(120), "120ms");
    assert.equal(durationText(1000), "1s");
    assert.equal(durationText(17_339), "17.339s");
    assert.equal(durationText(1_500), "1.5s");
    assert.equal(durationText(360_000), "6m0s");
    assert.equal(durationText(90_250), "1m30.25s");
    assert.equal(durationText(3_723_000), "1h2m3s");
  });

  test("x-ratelimit-* for the limits the principal has", () => {
    assert.deepEqual(rateLimitHeaders({ requests: { limit: 2, remaining: 0, resetMs: 60_000 }, tokens: { limit: 1000, remaining: 250, resetMs: 45_000 } }), {
      "x-ratelimit-limit-requests": "2",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "1m0s",
      "x-ratelimit-limit-tokens": "1000",
      "x-ratelimit-remaining-tokens": "250",
      "x-ratelimit-reset-tokens": "45s",
    });
    assert.deepEqual(rateLimitHeaders({}), {});
  });
});
