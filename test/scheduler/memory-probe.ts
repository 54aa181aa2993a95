/**
 * Run by memory-return.test.ts in a child process (with glibc's malloc tuned, see there): loads and unloads an
 * ~85 MB model through the real server a few times, measuring this process's RSS (and VRAM with
 * AI_SERVER_TEST_GPU=1) before, during and after each cycle; prints one JSON line of measurements.
 */
import { setTimeout as sleep } from "node:timers/promises";
import v8 from "node:v8";
import vm from "node:vm";
import { LlamaCppEngine } from "../../src/engine/llama-cpp/llama-cpp-engine.js";
import { ensureFixtures } from "../fixtures/models.js";
import { createModel, postJson, startServer } from "../helpers/start-server.js";
import { ensureMediumModel } from "./medium-model.js";

export interface MemoryCycle {
  before: { rss: number; vram: number };
  during: { rss: number; vram: number };
  after: { rss: number; vram: number };
}

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

const [file, fixtures] = await Promise.all([ensureMediumModel(), ensureFixtures()]);
const gpu = process.env.AI_SERVER_TEST_GPU === "1";
const engine = new LlamaCppEngine({ gpu: gpu ? "auto" : "off" });
const llama = await engine.runtime();
const server = await startServer({ engine, config: { gpu: gpu ? "auto" : "off", threads: 1, contextLength: 512 } });

const measure = async (): Promise<{ rss: number; vram: number }> => {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(50);
  }
  return { rss: process.memoryUsage().rss, vram: llama.gpu === false ? 0 : (await llama.getVramState()).used };
};
const unloaded = async (): Promise<void> => {
  while (((await (await fetch(`${server.baseUrl}/api/ps`)).json()) as { models: unknown[] }).models.length > 0) await sleep(10);
};
const generate = async (model: string, extra: Record<string, unknown>): Promise<void> => {
  const response = await postJson(server.baseUrl, "/api/generate", { model, stream: false, ...extra });
  if (response.status !== 200) throw new Error(`${model}: HTTP ${response.status} ${await response.text()}`);
  await response.text();
};

try {
  await createModel(server.baseUrl, "medium", file);
  await createModel(server.baseUrl, "tiny", fixtures.tiny);
  const cycle = async (): Promise<MemoryCycle> => {
    const before = await measure();
    await generate("medium", { prompt: "Tell me a story", options: { num_predict: 8 } });
    const during = await measure();
    await generate("medium", { keep_alive: 0 });
    await unloaded();
    return { before, during, after: await measure() };
  };
  // Warm up: the runtime, the HTTP path, a load/unload cycle of a tiny model, then one uncounted cycle of the medium
  // one (its first unload leaves ~1.5 MiB of first-use state, later ones ~0.5); a leak shows in every counted cycle.
  await generate("tiny", { prompt: "Hi", keep_alive: 0, options: { num_predict: 2 } });
  await unloaded();
  await cycle();
  const cycles: MemoryCycle[] = [];
  for (let i = 0; i < 3; i++) cycles.push(await cycle());
  process.stdout.write(`${JSON.stringify({ gpu: llama.gpu, cycles })}\n`);
} finally {
  await server.close();
}
