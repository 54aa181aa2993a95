/**
 * The scheduler's handling of engine crashes, driven through its public API with the scripted engine
 * (test-engine.ts) whose models can be made to report a crash as the llama-server engine's do (`onCrash`): the
 * instance is dropped at once and its memory freed, requests waiting for its slot go on to a new load, a helper
 * process's crash is only counted, and the limit-th crash within the window puts the model in the load cooldown.
 * Real processes killed with SIGKILL are in llama-server-crash.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { EngineCrashedError, ModelLoadError } from "../../src/domain/errors.js";
import type { EngineCrash, LoadedModel, LoadSpec } from "../../src/engine/engine.js";
import type { SchedulerEvents } from "../../src/scheduler/scheduler.js";
import { forever, record, scheduler, TestEngine, until } from "./test-engine.js";

/** The scripted engine, whose loaded models can be told that one of their processes died. */
class CrashingEngine extends TestEngine {
  private readonly listeners = new Map<string, Array<(crash: EngineCrash) => void>>();

  override async load(spec: LoadSpec, signal?: AbortSignal): Promise<LoadedModel> {
    const model = await super.load(spec, signal);
    const listeners: Array<(crash: EngineCrash) => void> = [];
    this.listeners.set(spec.modelPath, listeners);
    return Object.assign(Object.create(model) as LoadedModel, { onCrash: (listener: (crash: EngineCrash) => void) => listeners.push(listener) });
  }

  /** The loaded model of `path` reports a crash of its generation process (fatal) or of a helper process. */
  crash(path: string, fatal = true): void {
    const detail = `its ${fatal ? "" : "embeddings "}test process was killed by SIGKILL`;
    for (const listener of this.listeners.get(path) ?? []) listener({ error: new EngineCrashedError(`${path}.gguf`, detail), fatal });
  }
}

function counting(): SchedulerEvents & { crashes: string[] } {
  const crashes: string[] = [];
  return { crashes, modelLoaded: () => {}, modelLoadFailed: () => {}, engineCrashed: (model, reason) => void crashes.push(`${model}: ${reason}`) };
}

test("a crash drops the instance at once (memory freed, off the running list) and the next request loads it again", { timeout: 10_000 }, async () => {
  const engine = new CrashingEngine();
  const events = counting();
  const s = scheduler(engine, { events, loadCooldownMs: 30_000 });
  (await s.acquire(record("a"), {}, forever)).release();
  assert.equal(s.running().length, 1);
  engine.crash("a");
  assert.deepEqual(s.running(), [], "gone from /api/ps at once");
  await until(() => engine.events.includes("unload a"), "the dead instance is unloaded");
  assert.deepEqual(s.status().memory?.booked, { ram: 0, vram: 0 }, "its memory is no longer booked");
  assert.deepEqual(events.crashes, ["a:latest: its test process was killed by SIGKILL"], "counted, under the request's name");
  (await s.acquire(record("a"), {}, forever)).release();
  assert.equal(engine.loadCount("a"), 2);
  assert.deepEqual(s.status().failedLoads, [], "one crash is no cooldown");
  await s.close();
});

test("requests waiting for the crashed instance's slot go on to a new load; the one holding it keeps its lease until it releases", { timeout: 10_000 }, async () => {
  const engine = new CrashingEngine();
  const s = scheduler(engine, { slotsPerModel: 1 });
  const holder = await s.acquire(record("a"), {}, forever);
  const [one, two] = [s.acquire(record("a"), {}, forever), s.acquire(record("a"), {}, forever)];
  await until(() => s.running()[0]?.queued === 2, "two requests wait for the slot");
  engine.crash("a");
  const first = await one;
  assert.equal(engine.loadCount("a"), 2, "loaded again for the waiters, while the dead lease is still held");
  first.release();
  (await two).release();
  holder.release(); // releasing a lease of the dropped instance changes nothing
  assert.equal(s.running().length, 1);
  assert.equal(s.running()[0]?.active, 0);
  await s.close();
});

test("a helper process's crash (embeddings, rerank) is counted but leaves the model loaded", { timeout: 10_000 }, async () => {
  const engine = new CrashingEngine();
  const events = counting();
  const s = scheduler(engine, { events });
  (await s.acquire(record("a"), {}, forever)).release();
  engine.crash("a", false);
  assert.equal(s.running().length, 1);
  assert.deepEqual(events.crashes, ["a:latest: its embeddings test process was killed by SIGKILL"]);
  (await s.acquire(record("a"), {}, forever)).release();
  assert.equal(engine.loadCount("a"), 1);
  await s.close();
});

test("the limit-th crash within the window puts the model in the cooldown with the crash as its reason; crashes spread wider do not", { timeout: 10_000 }, async () => {
  const engine = new CrashingEngine();
  let now = 1_000_000;
  const s = scheduler(engine, { loadCooldownMs: 30_000, crashLimit: { count: 3, windowMs: 60_000 }, now: () => now });
  const loadAndCrash = async (): Promise<void> => {
    (await s.acquire(record("a"), {}, forever)).release();
    engine.crash("a");
  };
  // Three crashes, but never three within a minute: loaded again each time.
  for (let i = 0; i < 3; i++) {
    await loadAndCrash();
    now += 40_000;
  }
  assert.deepEqual(s.status().failedLoads, []);
  await loadAndCrash(); // the 2nd within the minute (with the one 40 s ago)
  now += 1000;
  await loadAndCrash(); // the 3rd
  assert.equal(engine.loadCount("a"), 5);
  const [failure] = s.status().failedLoads;
  assert.equal(failure?.model, "a:latest");
  assert.match(failure?.error ?? "", /^model "a:latest" keeps crashing \(3 times within 1m\), so it is not loaded again for now; the last crash: its test process was killed by SIGKILL$/);
  now += 2000;
  await assert.rejects(s.acquire(record("a"), {}, forever), (error: unknown) => {
    assert.ok(error instanceof ModelLoadError);
    assert.match(error.message, /keeps crashing .* \(last crash 2s ago; next attempt in 28s\)$/);
    return true;
  });
  assert.equal(engine.loadCount("a"), 5, "no load during the cooldown");
  now += 30_000;
  (await s.acquire(record("a"), {}, forever)).release();
  assert.equal(engine.loadCount("a"), 6, "loaded again once the cooldown is over");
  await s.close();
});
