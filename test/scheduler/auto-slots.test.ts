/**
 * Automatic slots (AI_SERVER_NUM_PARALLEL=auto, the default): the most of 4, 2, 1 that fit in the memory the other
 * models leave free when a model loads, with the reason in /api/ps; a count set by hand is kept.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { AUTO_SLOTS_MAX, chooseSlots } from "../../src/scheduler/slots.js";
import { forever, record, scheduler, TestEngine } from "./test-engine.js";

const auto = { slotsPerModel: 0 };

test("four slots when they fit; the reason says so", async () => {
  const engine = new TestEngine();
  engine.perSlot.set("a", { ram: 50, vram: 0 });
  const s = scheduler(engine, { ...auto, memory: { budget: { ram: 1000 }, headroom: 0 } });
  const leases = await Promise.all(Array.from({ length: AUTO_SLOTS_MAX }, () => s.acquire(record("a"), {}, forever)));
  const [running] = s.running();
  assert.equal(running?.slots, 4);
  assert.equal(running?.active, 4, "four requests served at once");
  assert.match(running?.slotsReason ?? "", /^auto: 4 slots of 512 tokens fit in the free memory/);
  assert.equal(engine.loads[0]?.slots, 4);
  assert.equal(running?.ram, 250, "booked with the chosen slots' estimate");
  for (const lease of leases) lease.release();
  await s.close();
});

test("fewer slots when memory is short, one when even two do not fit; loaded models count against the free memory", async () => {
  const engine = new TestEngine();
  engine.perSlot.set("b", { ram: 100, vram: 0 });
  engine.perSlot.set("c", { ram: 100, vram: 0 });
  const s = scheduler(engine, { ...auto, memory: { budget: { ram: 350 }, headroom: 0 } });
  (await s.acquire(record("b"), {}, forever)).release();
  assert.equal(s.running()[0]?.slots, 2, "4 slots need 400, 2 need 200 of 350");
  assert.match(s.running()[0]?.slotsReason ?? "", /auto: 2 slots .* 4 would need 400 B of RAM/);
  (await s.acquire(record("c"), {}, forever)).release();
  const c = s.running().find((r) => r.record.modelDigest === "c");
  assert.equal(c?.slots, 1, "b holds 200 of 350: 2 slots (200) do not fit beside it, 1 (100) does");
  assert.deepEqual(engine.events, ["load b", "load c"], "nothing was unloaded for more slots");
  await s.close();
});

test("a count set by hand (the setting, or the model's num_parallel) is kept and named as the reason", async () => {
  const engine = new TestEngine();
  const s = scheduler(engine, { slotsPerModel: 3 });
  (await s.acquire(record("d"), {}, forever)).release();
  (await s.acquire(record("e", { num_parallel: 2 }), {}, forever)).release();
  const byDigest = new Map(s.running().map((r) => [r.record.modelDigest, r]));
  assert.equal(byDigest.get("d")?.slots, 3);
  assert.equal(byDigest.get("d")?.slotsReason, "AI_SERVER_NUM_PARALLEL");
  assert.equal(byDigest.get("e")?.slots, 2);
  assert.equal(byDigest.get("e")?.slotsReason, "the model's num_parallel parameter");
  await s.close();
});

test("an automatic instance serves later requests without a reload, whatever it chose", async () => {
  const engine = new TestEngine();
  engine.perSlot.set("f", { ram: 300, vram: 0 });
  const s = scheduler(engine, { ...auto, memory: { budget: { ram: 350 }, headroom: 0 } });
  for (let i = 0; i < 3; i++) (await s.acquire(record("f"), {}, forever)).release();
  assert.equal(engine.loadCount("f"), 1);
  assert.equal(s.running()[0]?.slots, 1);
  await s.close();
});

test("chooseSlots asks the largest count first and stops at the first that fits", async () => {
  const asked: number[] = [];
  const choice = await chooseSlots(async (slots) => (asked.push(slots), { ram: slots * 100, vram: 0 }), { ram: 250, vram: 0 }, 4096);
  assert.equal(choice.slots, 2);
  assert.deepEqual(asked, [4, 2]);
  const none = await chooseSlots(async () => ({ ram: 1000, vram: 0 }), { ram: -5, vram: 0 }, 4096);
  assert.equal(none.slots, 1);
  assert.match(none.reason, /even that needs more than the free memory \(0 B of RAM\)/);
});
