/**
 * Crashes of the llama-server engine's processes, on real llama-server processes killed with SIGKILL (as the OOM
 * killer does): a stream in flight ends with EngineCrashedError (never a normal `done`), the model reports the crash
 * at once, later calls fail fast; a dead embeddings or rerank process is started again by the next call; a socket
 * left by a dead process never holds a request; a process that never becomes healthy does not hold a load past its
 * timeout (a stand-in script, test/helpers/fake-llama-server.ts: no real llama-server can be wedged on demand).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import type { CompletionRequest } from "../../src/domain/chat.js";
import { EngineCrashedError, GenerationError, ModelLoadError } from "../../src/domain/errors.js";
import type { GenerationEvent } from "../../src/domain/generation.js";
import type { EngineCrash, LoadSpec } from "../../src/engine/engine.js";
import { ServerClient } from "../../src/engine/llama-server/client.js";
import { LlamaServerEngine } from "../../src/engine/llama-server/llama-server-engine.js";
import type { LlamaServerModel } from "../../src/engine/llama-server/loaded-model.js";
import { ensureFixtures, RERANK_DOCUMENTS, RERANK_QUERY, type FixturePaths } from "../fixtures/models.js";
import { chatRequest, collect } from "../helpers/engine-events.js";
import { writeFakeLlamaServer } from "../helpers/fake-llama-server.js";
import { buildLlamaServer } from "../helpers/llama-server-binary.js";
import { ensureMediumModel } from "../scheduler/medium-model.js";

let binary: string;
let engine: LlamaServerEngine;
let fixtures: FixturePaths;
/** A random model of tens of tokens per second on one thread: a long generation is still running when it is killed. */
let medium: string;
const never = new AbortController().signal;

before(async () => {
  binary = buildLlamaServer();
  [fixtures, medium] = await Promise.all([ensureFixtures(), ensureMediumModel()]);
  engine = new LlamaServerEngine({ binary, gpu: "off" });
});

after(() => engine?.close());

function spec(modelPath: string, overrides: Partial<LoadSpec> = {}): LoadSpec {
  return { modelPath, contextSize: 1024, slots: 1, threads: 1, ...overrides };
}

/** A raw completion that runs until the context is full (random weights never sample the end token here). */
const LONG: CompletionRequest = { prompt: "hello", raw: true, format: { type: "text" }, sampling: { temperature: 0 } };

function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves with the first crash `model` reports. */
function nextCrash(model: LlamaServerModel): Promise<EngineCrash> {
  return new Promise((resolve) => model.onCrash((crash) => resolve(crash)));
}

test("the generation process killed mid-stream: the stream ends with EngineCrashedError, no done; the crash is reported; later calls fail fast", { timeout: 120_000 }, async () => {
  const model = (await engine.load(spec(medium))) as LlamaServerModel;
  const reported: EngineCrash[] = [];
  model.onCrash((crash) => reported.push(crash));
  try {
    const events: GenerationEvent[] = [];
    const pid = model.server.pid;
    await assert.rejects(
      (async () => {
        for await (const event of model.complete(LONG, never)) {
          events.push(event);
          if (events.length === 3) process.kill(pid ?? 0, "SIGKILL");
        }
      })(),
      (error: unknown) => {
        assert.ok(error instanceof EngineCrashedError, `${String(error)}`);
        assert.equal(error.code, "engine_crashed");
        assert.equal(error.status, 502);
        const start = `model "${path.basename(medium)}" crashed: its llama-server process was killed by SIGKILL; its last log lines:\n`;
        assert.ok(error.message.startsWith(start), error.message);
        return true;
      },
    );
    assert.ok(events.length >= 3 && events.every((e) => e.type === "text"), "text, then the error: never a done event");
    assert.equal(reported.length, 1, "reported once");
    assert.ok(reported[0]?.fatal && reported[0].error instanceof EngineCrashedError && /SIGKILL/.test(reported[0].error.message));

    // A listener added after the crash hears of it too (the scheduler subscribes once the load has finished).
    const late = await nextCrash(model);
    assert.ok(late.fatal);

    // Every later call fails at once with the same reason, whatever route it takes.
    await assert.rejects(collect(model.chat(chatRequest(), never)), EngineCrashedError);
    await assert.rejects(model.tokenize({ text: "hi", addSpecial: true, parseSpecial: true }, never), EngineCrashedError);
    await assert.rejects(model.detokenize([1, 2], never), EngineCrashedError);
  } finally {
    await model.unload();
  }
  assert.ok(!existsSync(model.server.socketPath), "unload after a crash removes the dead process's socket");
});

test("the kernel ends a stream whose process died, and refuses connections to its socket (the client needs no exit event)", { timeout: 120_000 }, async () => {
  const model = (await engine.load(spec(medium))) as LlamaServerModel;
  try {
    // A bare client that knows nothing of the process: only the socket tells it.
    const client = new ServerClient(model.server.socketPath, async () => undefined);
    let events = 0;
    await assert.rejects(
      client.stream("/completion", { prompt: "hello", n_predict: 1000 }, never, () => {
        if (++events === 2) process.kill(model.server.pid ?? 0, "SIGKILL");
      }),
      (error: unknown) => error instanceof GenerationError && /connection/.test(error.message),
    );
    await model.server.exited;
    assert.ok(existsSync(model.server.socketPath), "a SIGKILLed server leaves its socket file behind");
    await assert.rejects(client.post("/tokenize", { content: "hi" }), (error: unknown) => error instanceof GenerationError && /ECONNREFUSED/.test(error.message));
  } finally {
    await model.unload();
  }
});

test("a dead embeddings or rerank process is reported (not fatally) and started again by the next call; generation goes on", { timeout: 120_000 }, async () => {
  const model = (await engine.load(spec(fixtures.reranker, { contextSize: 512 }))) as LlamaServerModel;
  try {
    const generation = model.server.pid;
    const embed = () => model.embed({ inputs: ["hello"], truncate: true }, never);
    const rerank = () => model.rerank({ query: RERANK_QUERY, documents: [...RERANK_DOCUMENTS] }, never);
    const sides = [
      { name: "embeddings", call: embed, process: () => model.embeddingProcess },
      { name: "rerank", call: rerank, process: () => model.rerankProcess },
    ];
    for (const side of sides) {
      const first = await side.call();
      const dead = side.process();
      assert.ok(dead && isAlive(dead.pid), `${side.name} process running`);
      const crash = nextCrash(model);
      process.kill(dead.pid ?? 0, "SIGKILL");
      const reported = await crash;
      assert.equal(reported.fatal, false);
      assert.match(reported.error.message, new RegExp(`its llama-server ${side.name} process was killed by SIGKILL`));
      assert.equal(side.process(), undefined, "forgotten");
      await dead.exited;
      const again = await side.call();
      assert.deepEqual(again, first, `${side.name}: the same answer from a new process`);
      assert.ok(isAlive(side.process()?.pid) && side.process()?.pid !== dead.pid, "a new process");
    }
    assert.ok(isAlive(generation) && model.server.pid === generation, "the generation process was never touched");
    assert.ok((await collect(model.complete({ ...LONG, sampling: { temperature: 0, maxTokens: 3 } }, never))).events.at(-1)?.type === "done");
  } finally {
    await model.unload();
  }
});

test("a process that never answers /health does not hold the load past its timeout, and is stopped", { timeout: 60_000 }, async () => {
  const fake = await writeFakeLlamaServer("never-healthy");
  const wedged = new LlamaServerEngine({ binary: fake.binary, gpu: "off", loadTimeoutMs: 1500 });
  try {
    await assert.rejects(wedged.load(spec(fixtures.chat)), (error: unknown) => error instanceof ModelLoadError && /was not ready after 2 s/.test(error.message));
    const [pid] = await fake.starts();
    assert.ok(pid !== undefined && !isAlive(pid), "the wedged process is gone");
  } finally {
    await wedged.close();
    await fake.remove();
  }
});
