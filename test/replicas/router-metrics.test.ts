/**
 * What a router reads from each replica's /metrics, with real inference on a fixture model (one thread), on both
 * engines: requests running and the fraction of the KV cache they hold, under vLLM's `model_name` label (the names the
 * Gateway API Inference Extension's flags are pointed at). A stream on a random model of tens of tokens per second is
 * scraped after its first chunk (hundreds of tokens still to come), then again once the client has left.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import type { EngineName } from "../../src/engine/engine.js";
import { setTimeout as sleep } from "node:timers/promises";
import { ensureMediumModel } from "../scheduler/medium-model.js";
import { parsePrometheusText, valueOf } from "../helpers/prometheus-text.js";
import { createModel, startEngineServer, type TestServer } from "../helpers/start-server.js";

const MODEL = { model_name: "medium:latest" };

for (const engine of ["llama-server", "llama-cpp"] as const satisfies readonly EngineName[]) {
  describe(`router metrics, ${engine} engine`, () => {
    let server: TestServer;

    before(async () => {
      server = await startEngineServer(engine, { numParallel: 2 });
      await createModel(server.baseUrl, "medium", await ensureMediumModel());
    });

    after(async () => {
      await server?.close();
    });

    async function scrape(): Promise<{ running?: number; waiting?: number; kv?: number }> {
      const families = parsePrometheusText(await (await fetch(`${server.baseUrl}/metrics`)).text());
      return {
        running: valueOf(families, "ai_server_num_requests_running", MODEL),
        waiting: valueOf(families, "ai_server_num_requests_waiting", MODEL),
        kv: valueOf(families, "ai_server_kv_cache_usage_perc", MODEL),
      };
    }

    test("a running stream: one request running, its prompt and tokens held in the KV cache; after it, none", async () => {
      const client = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: "unused", maxRetries: 0 });
      const stream = await client.chat.completions.create({
        model: "medium",
        messages: [{ role: "user", content: "Tell me a long story about the weather in Paris." }],
        stream: true,
        max_tokens: 500,
      });
      const chunks = stream[Symbol.asyncIterator]();
      await chunks.next();
      const during = await scrape();
      stream.controller.abort();
      assert.equal(during.running, 1);
      assert.equal(during.waiting, 0);
      // Two slots of 1024 cells: the running request holds its prompt and what it generated so far.
      assert.ok(during.kv !== undefined && during.kv > 0 && during.kv < 0.5, `kv_cache_usage_perc ${during.kv}`);
      let afterwards = await scrape();
      for (let i = 0; i < 200 && (afterwards.running !== 0 || afterwards.kv !== 0); i++) {
        await sleep(50); // the client's departure reaches the engine, which stops
        afterwards = await scrape();
      }
      assert.equal(afterwards.running, 0);
      assert.equal(afterwards.kv, 0, "a finished request holds nothing (its cached prefix stays for its next turn, uncounted)");
    });
  });
}
