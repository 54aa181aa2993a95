/**
 * GET /health and GET /ready: readiness flips when the start-up preloads are done (and not before), /ready also
 * needs a readable store, and both answer at once while every slot is held by a generation that never ends and a
 * load never finishes. The engine is the fake one, whose loads a test holds back (a gate) to keep a preload or a
 * load in progress for as long as it needs, without timing.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { LoadedModel, LoadSpec } from "../../src/engine/engine.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { writeFakeModel } from "../helpers/gguf-files.js";
import { createModel, postJson, startServer, type TestServer } from "../helpers/start-server.js";

/** The fake engine, whose loads wait while a gate is closed. */
class GatedEngine extends FakeEngine {
  private gate?: { opened: Promise<void>; open: () => void };

  closeGate(): void {
    let open = (): void => undefined;
    const opened = new Promise<void>((resolve) => (open = resolve));
    this.gate = { opened, open };
  }

  openGate(): void {
    this.gate?.open();
    this.gate = undefined;
  }

  override async load(spec: LoadSpec): Promise<LoadedModel> {
    await this.gate?.opened;
    return super.load(spec);
  }
}

interface HealthBody {
  status: string;
  preload: Array<{ model: string; state: string }>;
  loaded: number;
  loading: { model: string } | null;
  queue: { waiting: number; max: number };
}

async function get(server: TestServer, route: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.baseUrl}${route}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("readiness", () => {
  let home: string;

  before(async () => {
    home = await mkdtemp(path.join(os.tmpdir(), "ai-server-ready-"));
    const setup = await startServer({ engine: new FakeEngine(), config: { home } });
    try {
      const file = path.join(setup.home, "chat.gguf");
      await writeFakeModel(file);
      await createModel(setup.baseUrl, "chat", file);
    } finally {
      await setup.close();
    }
  });

  after(async () => {
    if (home) await rm(home, { recursive: true, force: true });
  });

  test("/ready and /health are 503 while a start-up preload loads, 200 once it is done", async () => {
    const engine = new GatedEngine();
    engine.closeGate();
    const server = await startServer({ engine, config: { home, preload: "chat" } });
    try {
      const ready = await get(server, "/ready");
      assert.equal(ready.status, 503);
      assert.equal(ready.body.status, "not ready");
      assert.deepEqual(ready.body.reasons, ["start-up preloads in progress (0 of 1 done)"]);
      const health = await get(server, "/health");
      assert.equal(health.status, 503, "/health keeps its meaning");
      assert.equal(health.body.status, "loading");
      assert.deepEqual((health.body as unknown as HealthBody).preload, [{ model: "chat", state: "loading" }]);
      assert.equal((await fetch(`${server.baseUrl}/ready`, { method: "HEAD" })).status, 503, "HEAD too");

      engine.openGate();
      await eventually("/ready is 200", async () => (await get(server, "/ready")).status === 200);
      assert.deepEqual((await get(server, "/ready")).body, { status: "ready" });
      const done = await get(server, "/health");
      assert.equal(done.status, 200);
      assert.equal(done.body.status, "ok");
      assert.equal(done.body.loaded, 1);
    } finally {
      engine.openGate();
      await server.close();
    }
  });

  test("/ready is 503 while the store cannot be read, naming why; /health does not read the store", async () => {
    const server = await startServer({ engine: new FakeEngine(), config: { home } });
    const { store } = server.app.services;
    try {
      assert.equal((await get(server, "/ready")).status, 200, "no preload: ready at once");
      // A database that fails its reads while the server holds it open cannot be produced reliably from outside:
      // the store's one read is made to fail as SQLite's would.
      store.checkReadable = () => {
        throw new Error("disk I/O error");
      };
      const broken = await get(server, "/ready");
      assert.equal(broken.status, 503);
      assert.deepEqual(broken.body.reasons, ["the store cannot be read: disk I/O error"]);
      assert.equal((await get(server, "/health")).status, 200);
    } finally {
      await server.close();
    }
  });
});

describe("while every slot is busy", () => {
  const engine = new GatedEngine();
  let server: TestServer;

  before(async () => {
    server = await startServer({ engine, config: { numParallel: 2 } });
    const file = path.join(server.home, "chat.gguf");
    await writeFakeModel(file);
    await createModel(server.baseUrl, "chat", file);
    const other = path.join(server.home, "slow.gguf");
    await writeFakeModel(other, { contextLength: 4096 }); // other weights: a load of its own
    await createModel(server.baseUrl, "slow", other);
  });

  after(async () => {
    engine.openGate();
    await server?.close();
  });

  test("/health, /ready and /metrics answer at once while generations never end, requests queue and a load never finishes", async () => {
    engine.script = { endless: true, delayMs: 20 };
    const stop = new AbortController();
    const generate = (model: string): Promise<Response> => postJson(server.baseUrl, "/api/generate", { model, prompt: "Hi" }, { signal: stop.signal });
    try {
      const running = await Promise.all([generate("chat"), generate("chat")]);
      await Promise.all(running.map((r) => r.body?.getReader().read())); // both slots generate
      const queued = [generate("chat"), generate("chat")].map((p) => p.catch(() => undefined));
      engine.closeGate();
      const loading = generate("slow").catch(() => undefined);
      await eventually("two requests wait and a load is stuck", async () => {
        const body = (await get(server, "/health")).body as unknown as HealthBody;
        return body.queue.waiting === 2 && body.loading?.model === "slow:latest"; // the request that starts a load is not queued
      });

      const health = await get(server, "/health");
      assert.equal(health.status, 200);
      assert.equal(health.body.status, "ok");
      assert.equal(health.body.loaded, 1);
      assert.equal((await get(server, "/ready")).status, 200);
      const metrics = await fetch(`${server.baseUrl}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /ai_server_num_requests_running\{model="chat:latest",model_name="chat:latest"\} 2/);
      assert.equal(engine.running, 2, "the generations still run");

      stop.abort();
      engine.openGate();
      await Promise.all([...queued, loading]);
    } finally {
      stop.abort();
      engine.openGate();
      engine.script = {};
    }
  });
});
