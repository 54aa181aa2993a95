/**
 * The scheduler over HTTP with REAL inference (node-llama-cpp on the CPU, one thread) on the fixture models:
 * memory admission and eviction order, keep_alive, continuous batching, prefix reuse, the queue, timeouts,
 * disconnects, load cooldowns, preload and readiness, aliases, hot swap under load.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Engine, LoadedModel, LoadSpec, MemoryEstimate } from "../../src/engine/engine.js";
import { LlamaCppEngine } from "../../src/engine/llama-cpp/llama-cpp-engine.js";
import { ensureFixtures, JSON_REPLY, SCRIPTED_REPLY, type FixturePaths } from "../fixtures/models.js";
import { createModel, postJson, readNdjson, startServer, type TestServer } from "../helpers/start-server.js";
import { ensureMediumModel } from "./medium-model.js";

/** The real engine, counting load attempts, optionally slowing loads down. */
class CountingEngine implements Engine {
  readonly name = "llama.cpp (counted)";
  readonly inner = new LlamaCppEngine({ gpu: "off" });
  readonly loads: string[] = [];
  loadDelayMs = 0;

  async load(spec: LoadSpec, signal?: AbortSignal): Promise<LoadedModel> {
    this.loads.push(spec.modelPath);
    if (this.loadDelayMs > 0) await sleep(this.loadDelayMs);
    return this.inner.load(spec, signal);
  }

  estimateMemory(spec: LoadSpec): Promise<MemoryEstimate> {
    return this.inner.estimateMemory(spec);
  }

  capacity(): Promise<MemoryEstimate> {
    return this.inner.capacity();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

interface PsModel {
  name: string;
  digest: string;
  size: number;
  size_vram: number;
  context_length: number;
  expires_at: string;
  active: number;
  queued: number;
  slots?: number;
  batches?: { total: number; multi_sequence: number; max_sequences: number };
}

const CONTEXT = 512;
let fixtures: FixturePaths;
let scratch: string;

before(async () => {
  fixtures = await ensureFixtures();
  scratch = await mkdtemp(path.join(os.tmpdir(), "ai-server-sched-"));
});
after(() => rm(scratch, { recursive: true, force: true }));

async function start(config: Record<string, unknown> = {}, engine: Engine = new CountingEngine()): Promise<TestServer> {
  return startServer({ engine, config: { gpu: "off", threads: 1, contextLength: CONTEXT, loadCooldownMs: 0, ...config } });
}

async function ps(server: TestServer): Promise<PsModel[]> {
  return ((await (await fetch(`${server.baseUrl}/api/ps`)).json()) as { models: PsModel[] }).models;
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

const hi = [{ role: "user", content: "Hi" }];

async function chat(server: TestServer, model: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const response = await postJson(server.baseUrl, "/api/chat", { model, messages: hi, stream: false, ...extra });
  const body = (await response.json()) as Record<string, unknown>;
  assert.equal(response.status, 200, JSON.stringify(body));
  return body;
}

const replyOf = (body: Record<string, unknown>): string => String((body.message as { content?: string } | undefined)?.content);

test("memory admission: models share a small budget, the least recently used idle one is evicted, a model that can never fit is refused", async () => {
  const estimator = new LlamaCppEngine({ gpu: "off" });
  const need = async (file: string): Promise<number> => (await estimator.estimateMemory({ modelPath: file, contextSize: CONTEXT, slots: 1, threads: 1 })).ram;
  const sizes = await Promise.all([fixtures.chat, fixtures.json, fixtures.toolCall].map(need));
  await estimator.close();
  const budget = sizes.reduce((a, b) => a + b, 0) - Math.min(...sizes) / 2; // any two fit, never all three
  const server = await start({ memoryBudgetBytes: budget, memoryHeadroomBytes: 0, maxLoadedModels: 0 });
  try {
    await createModel(server.baseUrl, "chat", fixtures.chat);
    await createModel(server.baseUrl, "json", fixtures.json);
    await createModel(server.baseUrl, "tool", fixtures.toolCall);
    await createModel(server.baseUrl, "wide", fixtures.tiny, { parameters: { num_parallel: 64 } });
    const loaded = async (): Promise<string[]> => (await ps(server)).map((m) => m.name).sort();

    await chat(server, "chat");
    await chat(server, "json");
    assert.deepEqual(await loaded(), ["chat:latest", "json:latest"]);
    await chat(server, "chat"); // chat is now the more recently used
    await chat(server, "tool");
    assert.deepEqual(await loaded(), ["chat:latest", "tool:latest"], "json, the least recently used, was evicted");
    const models = await ps(server);
    assert.ok(models.every((m) => m.size > 0 && m.size <= budget && m.size_vram === 0 && m.context_length === CONTEXT));

    const refused = await postJson(server.baseUrl, "/api/generate", { model: "wide", prompt: "Hi", stream: false });
    assert.equal(refused.status, 507);
    const { error } = (await refused.json()) as { error: string };
    assert.match(error, /"wide:latest" needs [\d.]+ MiB of RAM \(weights and a 512-token context × 64 slots\) but the memory budget is [\d.]+ MiB of RAM/);
    assert.deepEqual(await loaded(), ["chat:latest", "tool:latest"], "nothing was evicted for it");
  } finally {
    await server.close();
  }
});

test("keep_alive: a duration expires the model; 0 unloads right after the request; negative keeps it with a far expiry", async () => {
  const server = await start();
  try {
    await createModel(server.baseUrl, "chat", fixtures.chat);
    await chat(server, "chat", { keep_alive: "300ms" });
    const [model] = await ps(server);
    const left = new Date(model?.expires_at ?? 0).getTime() - Date.now();
    assert.ok(left > 0 && left <= 300, `expires in ${left} ms`);
    await eventually(async () => (await ps(server)).length === 0, "the model expires");

    await chat(server, "chat", { keep_alive: -1 });
    assert.ok(new Date((await ps(server))[0]?.expires_at ?? 0).getUTCFullYear() > 2300);
    await chat(server, "chat", { keep_alive: 0 });
    await eventually(async () => (await ps(server)).length === 0, "keep_alive 0 unloads after the request");
  } finally {
    await server.close();
  }
});

test("continuous batching: 4 concurrent streams on a 4-slot model are decoded in shared batches and all answer exactly", async () => {
  const server = await start({ numParallel: 4 });
  try {
    await createModel(server.baseUrl, "chat", fixtures.chat);
    await createModel(server.baseUrl, "tiny", fixtures.tiny);
    const replies = await Promise.all(Array.from({ length: 4 }, () => chat(server, "chat", { options: { temperature: 0.7 } })));
    assert.deepEqual(replies.map(replyOf), Array(4).fill(SCRIPTED_REPLY));
    const generations = await Promise.all(
      Array.from({ length: 4 }, (_, i) => postJson(server.baseUrl, "/api/generate", { model: "tiny", prompt: `story ${i}`, options: { num_predict: 24 } }).then(readNdjson)),
    );
    for (const lines of generations) {
      assert.equal(lines.at(-1)?.done_reason, "length");
      // Exactly 24: the random model's tokens are whole ASCII characters (a model that stops inside a character is
      // tested in test/engine/llama-cpp-engine.test.ts).
      assert.equal(lines.at(-1)?.eval_count, 24);
    }
    const tiny = (await ps(server)).find((m) => m.name === "tiny:latest");
    assert.equal(tiny?.slots, 4);
    assert.ok((tiny?.batches?.multi_sequence ?? 0) > 10, `batches holding several sequences: ${JSON.stringify(tiny?.batches)}`);
    assert.ok((tiny?.batches?.max_sequences ?? 0) >= 3, JSON.stringify(tiny?.batches));
  } finally {
    await server.close();
  }
});

test("prefix reuse: turn 2 of a chat reads only the new turn, even with another conversation in between", async () => {
  const server = await start();
  try {
    await createModel(server.baseUrl, "chat", fixtures.chat, { parameters: { num_parallel: 2 } });
    const system = { role: "system", content: "You are a helpful, respectful and honest assistant. ".repeat(6) };
    const first = [system, { role: "user", content: "Tell me a story about the weather in Paris" }];
    const turn1 = await chat(server, "chat", { messages: first });
    await chat(server, "chat", { messages: [{ role: "user", content: "Hello there what is your name" }] }); // takes the other slot
    const second = [...first, { role: "assistant", content: replyOf(turn1) }, { role: "user", content: "Hi" }];
    const turn2 = await chat(server, "chat", { messages: second });
    assert.equal(replyOf(turn2), SCRIPTED_REPLY);
    const [read1, read2] = [Number(turn1.prompt_eval_count), Number(turn2.prompt_eval_count)];
    assert.ok(read1 > 60, `turn 1 read ${read1} tokens`);
    assert.ok(read2 < 30 && read2 < read1 / 3, `turn 2 read ${read2} tokens of a longer history: its prefix came from the KV cache`);
  } finally {
    await server.close();
  }
});

test("queue: past AI_SERVER_MAX_QUEUE waiting requests a request gets 503 with Retry-After; a client that disconnects frees its slot", async () => {
  const server = await start({ numParallel: 1, maxQueue: 1 });
  try {
    await createModel(server.baseUrl, "tiny", fixtures.tiny);
    const running = new AbortController();
    const long = await postJson(server.baseUrl, "/api/generate", { model: "tiny", prompt: "Tell me a story", options: { num_predict: 100000 } }, { signal: running.signal });
    const reader = long.body?.getReader();
    await reader?.read(); // generating
    const queued = postJson(server.baseUrl, "/api/generate", { model: "tiny", prompt: "Hi", stream: false, options: { num_predict: 3 } });
    await eventually(async () => (await ps(server))[0]?.queued === 1, "the second request waits");
    const refused = await postJson(server.baseUrl, "/api/generate", { model: "tiny", prompt: "Hi", stream: false });
    assert.equal(refused.status, 503);
    assert.match(refused.headers.get("retry-after") ?? "", /^\d+$/);
    assert.match(((await refused.json()) as { error: string }).error, /server busy/);

    running.abort(); // the client goes away: its generation stops and the queued request gets the slot
    const answer = await queued;
    assert.equal(answer.status, 200);
    assert.equal(((await answer.json()) as { eval_count: number }).eval_count, 3);
    await eventually(async () => (await ps(server))[0]?.active === 0, "every slot is free");
  } finally {
    await server.close();
  }
});

test("request timeout: generations past AI_SERVER_REQUEST_TIMEOUT end with a timeout error (in-band when streaming, else 504) and free their slots", async () => {
  const home = await mkdtemp(path.join(scratch, "home-"));
  const setup = await start({ home });
  await createModel(setup.baseUrl, "medium", await ensureMediumModel());
  await setup.close();
  // Preloaded (preloads have no timeout), so the timeout measures generation only; ~100 tokens/s: 500 tokens outlast it.
  const server = await start({ home, numParallel: 2, requestTimeoutMs: "1s", preload: "medium" });
  try {
    await eventually(async () => (await fetch(`${server.baseUrl}/health`)).status === 200, "medium is loaded", 30_000);
    const started = Date.now();
    const body = { model: "medium", prompt: "Tell me a story", raw: true, options: { num_predict: 100000 } };
    const [streamed, single] = await Promise.all([
      postJson(server.baseUrl, "/api/generate", body).then(readNdjson),
      postJson(server.baseUrl, "/api/generate", { ...body, stream: false }),
    ]);
    assert.ok(streamed.length > 2 && streamed[0]?.done === false);
    assert.match(String(streamed.at(-1)?.error), /request timed out after 1s \(generating\)/);
    assert.equal(single.status, 504);
    assert.match(((await single.json()) as { error: string }).error, /request timed out after 1s \(generating\)/);
    assert.ok(Date.now() - started < 4000, `ended after ${Date.now() - started} ms`);
    await eventually(async () => (await ps(server))[0]?.active === 0, "the slots are free");
  } finally {
    await server.close();
  }
});

test("a failed load is remembered: a storm of requests makes one load attempt and gets its reason; /health shows the cooldown", async () => {
  const broken = path.join(scratch, "broken.gguf");
  const bytes = await readFile(fixtures.tiny);
  const key = Buffer.from("llama.block_count");
  bytes.writeUInt32LE(3, bytes.indexOf(key) + key.length + 4); // 3 layers declared, 2 present: llama.cpp refuses it
  await writeFile(broken, bytes);
  const engine = new CountingEngine();
  const server = await start({ loadCooldownMs: "60s" }, engine);
  try {
    await createModel(server.baseUrl, "broken", broken);
    const storm = await Promise.all(Array.from({ length: 12 }, () => postJson(server.baseUrl, "/api/chat", { model: "broken", messages: hi, stream: false })));
    const later = await Promise.all(Array.from({ length: 12 }, () => postJson(server.baseUrl, "/api/chat", { model: "broken", messages: hi, stream: false })));
    for (const response of [...storm, ...later]) {
      assert.equal(response.status, 500);
      assert.match(((await response.json()) as { error: string }).error, /failed to load model "broken:latest"/);
    }
    const [last] = await Promise.all([postJson(server.baseUrl, "/api/generate", { model: "broken", prompt: "x" }).then((r) => r.json())]);
    assert.match((last as { error: string }).error, /\(load failed \d+m?s ago; next attempt in \d+[hms]\)/);
    assert.equal(engine.loads.length, 1, "one load attempt for 25 requests");
    const health = (await (await fetch(`${server.baseUrl}/health`)).json()) as { failed_loads: Array<{ model: string; error: string; retry_at: string }> };
    assert.equal(health.failed_loads.length, 1);
    assert.equal(health.failed_loads[0]?.model, "broken:latest");
    assert.ok(new Date(health.failed_loads[0]?.retry_at ?? 0).getTime() > Date.now() + 50_000);
  } finally {
    await server.close();
  }
});

test("preload and readiness: /health is 503 while the preloads run, then 200; an alias shares the loaded instance", async () => {
  const home = await mkdtemp(path.join(scratch, "home-"));
  const setup = await start({ home });
  await createModel(setup.baseUrl, "chat", fixtures.chat);
  await setup.close();
  const engine = new CountingEngine();
  engine.loadDelayMs = 300;
  const server = await start({ home, preload: "chat", aliases: "fast=chat" }, engine);
  try {
    const loading = await fetch(`${server.baseUrl}/health`);
    assert.equal(loading.status, 503);
    assert.equal(((await loading.json()) as { status: string }).status, "loading");
    await eventually(async () => (await fetch(`${server.baseUrl}/health`)).status === 200, "the preload is done");
    const ready = (await (await fetch(`${server.baseUrl}/health`)).json()) as { status: string; preload: unknown[]; loaded: number };
    assert.deepEqual(ready.preload, [{ model: "chat", state: "loaded" }]);
    assert.equal(ready.loaded, 1);
    assert.equal(replyOf(await chat(server, "fast")), SCRIPTED_REPLY);
    assert.equal(engine.loads.length, 1, "the alias used the preloaded instance");
    assert.equal((await ps(server)).length, 1);
    const del = await fetch(`${server.baseUrl}/api/delete`, { method: "DELETE", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "fast" }) });
    assert.equal(del.status, 400);
  } finally {
    await server.close();
  }
});

test("hot swap under load: re-creating a model with new weights loses no request; new requests get the new weights; the old unload", async () => {
  const server = await start({ numParallel: 2 });
  try {
    await createModel(server.baseUrl, "swap", fixtures.chat);
    await chat(server, "swap");
    const oldDigest = (await ps(server))[0]?.digest;
    let swapped = false;
    const results: Array<{ status: number; reply: string; afterSwap: boolean }> = [];
    const client = async (): Promise<void> => {
      for (let after = 0; after < 4; ) {
        const afterSwap = swapped;
        if (afterSwap) after++;
        const response = await postJson(server.baseUrl, "/api/chat", { model: "swap", messages: hi, stream: false });
        const body = (await response.json()) as Record<string, unknown>;
        results.push({ status: response.status, reply: replyOf(body), afterSwap });
      }
    };
    const clients = Promise.all([client(), client(), client()]);
    await eventually(async () => results.length >= 6, "requests flow");
    await createModel(server.baseUrl, "swap", fixtures.json);
    swapped = true;
    await clients;
    assert.deepEqual(results.filter((r) => r.status !== 200), [], "no request failed");
    assert.ok(results.every((r) => r.reply === SCRIPTED_REPLY || r.reply === JSON_REPLY));
    const after = results.filter((r) => r.afterSwap);
    assert.ok(after.length >= 12 && after.every((r) => r.reply === JSON_REPLY), "requests sent after the swap got the new weights");
    assert.ok(results.some((r) => !r.afterSwap && r.reply === SCRIPTED_REPLY));
    await eventually(async () => {
      const models = await ps(server);
      console.log(JSON.stringify(models.map(m => [m.digest, m.active, m.queued])), oldDigest);
      return models.length === 1 && models[0]?.digest !== oldDigest;
    }, "only the new weights stay loaded");
  } finally {
    await server.close();
  }
});
