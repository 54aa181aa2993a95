/** The scheduler's pure parts: admission and eviction order, budgets, cooldowns, sizes, durations, batch sharing. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { BatchItem, EvaluationPriority } from "node-llama-cpp";
import { loadConfig } from "../../src/config/load.js";
import { formatBytes, parseByteSize } from "../../src/domain/byte-size.js";
import { ModelLoadError } from "../../src/domain/errors.js";
import { shareBatch } from "../../src/engine/llama-cpp/batch-observer.js";
import { LoadFailures } from "../../src/scheduler/cooldown.js";
import { formatDuration } from "../../src/scheduler/deadline.js";
import { planAdmission, type Resident } from "../../src/scheduler/eviction.js";
import { budgetOf } from "../../src/scheduler/memory.js";

const resident = (key: string, ram: number, lastUsed: number, extra: Partial<Resident> = {}): Resident => ({
  key,
  memory: { ram, vram: 0 },
  idle: true,
  lastUsed,
  stale: false,
  ...extra,
});
const ram = (n: number) => ({ ram: n, vram: 0 });

test("planAdmission: fits as is; evicts LRU idle models until it fits; stale first; busy ones never", () => {
  const budget = ram(300);
  assert.deepEqual(planAdmission(ram(100), [resident("a", 100, 1)], budget, 0), { kind: "admit", victims: [] });
  assert.deepEqual(planAdmission(ram(200), [resident("a", 100, 2), resident("b", 100, 1)], budget, 0), { kind: "admit", victims: ["b"] });
  assert.deepEqual(planAdmission(ram(300), [resident("a", 100, 2), resident("b", 100, 1)], budget, 0), { kind: "admit", victims: ["b", "a"] });
  assert.deepEqual(planAdmission(ram(200), [resident("a", 100, 1), resident("b", 100, 2, { stale: true })], budget, 0), { kind: "admit", victims: ["b"] });
  const busy = planAdmission(ram(200), [resident("a", 100, 1, { idle: false }), resident("b", 100, 2, { idle: false })], budget, 0);
  assert.equal(busy.kind, "wait");
  assert.deepEqual(planAdmission(ram(200), [resident("a", 150, 1, { idle: false }), resident("b", 100, 2)], budget, 0).kind, "wait");
});

test("planAdmission: the count cap; never when the need exceeds the whole budget", () => {
  assert.deepEqual(planAdmission(ram(1), [resident("a", 1, 2), resident("b", 1, 1)], ram(300), 2), { kind: "admit", victims: ["b"] });
  assert.equal(planAdmission(ram(1), [resident("a", 1, 2, { idle: false }), resident("b", 1, 1, { idle: false })], ram(300), 2).kind, "wait");
  assert.deepEqual(planAdmission({ ram: 10, vram: 500 }, [], { ram: 300, vram: 400 }, 0), { kind: "never", pools: ["vram"] });
});

test("budgetOf: configured or measured, minus the headroom, per pool; no VRAM without a GPU", () => {
  assert.deepEqual(budgetOf({ configured: {}, measured: { ram: 16e9, vram: 0 }, headroom: 1e9 }), { ram: 15e9, vram: 0 });
  assert.deepEqual(budgetOf({ configured: { ram: 4e9 }, measured: { ram: 16e9, vram: 8e9 }, headroom: 1e9 }), { ram: 3e9, vram: 7e9 });
  assert.deepEqual(budgetOf({ configured: { ram: 1e8 }, measured: { ram: 16e9, vram: 0 }, headroom: 1e9 }), { ram: 0, vram: 0 });
});

test("LoadFailures: remembered for the cooldown, then forgotten; cooldown 0 remembers nothing", () => {
  let now = 0;
  const failures = new LoadFailures(1000, () => now);
  failures.record("k", "m", new ModelLoadError("boom"));
  assert.equal(failures.active("k")?.error.message, "boom");
  now = 999;
  assert.equal(failures.list().length, 1);
  now = 1000;
  assert.equal(failures.active("k"), undefined);
  const none = new LoadFailures(0, () => now);
  none.record("k", "m", new ModelLoadError("boom"));
  assert.equal(none.active("k"), undefined);
});

test("sizes and durations: parse and format", () => {
  assert.equal(parseByteSize("512MiB"), 512 * 2 ** 20);
  assert.equal(parseByteSize("1.5GB"), 1.5e9);
  assert.equal(parseByteSize("64 kb"), 64_000);
  assert.equal(parseByteSize("1048576"), 2 ** 20);
  assert.equal(parseByteSize(0), 0);
  assert.throws(() => parseByteSize("12 parsecs"), /invalid size/);
  assert.throws(() => parseByteSize("-1GB"), /invalid size/);
  assert.equal(formatBytes(3 * 2 ** 30), "3.00 GiB");
  assert.equal(formatBytes(900), "900 B");
  assert.equal(formatDuration(250), "250ms");
  assert.equal(formatDuration(30_000), "30s");
  assert.equal(formatDuration(5_400_000), "1h30m");
});

test("the scheduler's settings: defaults, sizes, durations, preload list, aliases; bad values are reported", () => {
  const config = loadConfig({});
  assert.equal(config.maxLoadedModels, 3);
  assert.equal(config.memoryBudgetBytes, undefined);
  assert.equal(config.memoryHeadroomBytes, 2 ** 30);
  assert.equal(config.loadCooldownMs, 30_000);
  assert.equal(config.requestTimeoutMs, 600_000);
  const set = loadConfig({
    AI_SERVER_MEMORY_BUDGET: "8GiB",
    AI_SERVER_REQUEST_TIMEOUT: "0",
    AI_SERVER_PRELOAD: "llama3, qwen:7b",
    AI_SERVER_ALIASES: "fast=qwen:0.5b, smart = llama3:70b",
  });
  assert.equal(set.memoryBudgetBytes, 8 * 2 ** 30);
  assert.equal(set.requestTimeoutMs, 0);
  assert.deepEqual(set.preload, ["llama3", "qwen:7b"]);
  assert.deepEqual(set.aliases, { fast: "qwen:0.5b", smart: "llama3:70b" });
  assert.throws(() => loadConfig({ AI_SERVER_MEMORY_BUDGET: "lots", AI_SERVER_ALIASES: "oops" }), (error: Error) => {
    assert.match(error.message, /AI_SERVER_MEMORY_BUDGET="lots": invalid size/);
    assert.match(error.message, /AI_SERVER_ALIASES="oops": "oops" is not alias=model/);
    return true;
  });
});

test("shareBatch: decode steps give every sequence its token; long prompts share the batch evenly", () => {
  const item = (tokens: number, evaluationPriority: EvaluationPriority = 5): BatchItem => ({ tokens: Array(tokens).fill(1), logits: [], evaluationPriority });
  const decode = [item(1), item(1), item(1)];
  assert.deepEqual(shareBatch(decode, 512).map((p) => p.processAmount), [1, 1, 1]);
  assert.deepEqual(shareBatch([item(1000), item(1000)], 512).map((p) => p.processAmount), [256, 256]);
  assert.deepEqual(shareBatch([item(10), item(1000)], 512).map((p) => p.processAmount), [10, 502]);
  assert.deepEqual(shareBatch([item(1000, 1), item(1000, 5), item(2, 3)], 512).map((p) => p.processAmount), [170, 340, 2]);
});
