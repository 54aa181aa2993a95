/**
 * /metrics after REAL inference, on the default product engine (llama.cpp's llama-server, one process per model; on
 * the CPU, one thread) and the scripted fixture model: one chat observes its time to first token, inter-token
 * latency and end-to-end latency once each, its tokens, and the model's load.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Ollama } from "ollama";
import { ensureFixtures, SCRIPTED_REPLY } from "../fixtures/models.js";
import { parsePrometheusText, valueOf, type Family } from "../helpers/prometheus-text.js";
import { createModel, startEngineServer, type TestServer } from "../helpers/start-server.js";

let server: TestServer;
const MODEL = { model: "scripted:latest" };

before(async () => {
  const fixtures = await ensureFixtures();
  server = await startEngineServer("llama-server");
  await createModel(server.baseUrl, "scripted", fixtures.chat);
});

after(() => server?.close());

async function scrape(): Promise<Map<string, Family>> {
  return parsePrometheusText(await (await fetch(`${server.baseUrl}/metrics`)).text());
}

test("one real chat: one observation of each latency histogram, its tokens, the load's duration", async () => {
  const reply = await new Ollama({ host: server.baseUrl }).chat({ model: "scripted", messages: [{ role: "user", content: "Hi" }], options: { temperature: 0 } });
  assert.equal(reply.message.content, SCRIPTED_REPLY);
  const families = await scrape();
  const value = (name: string, labels: Record<string, string> = MODEL): number => valueOf(families, name, labels) ?? 0;
  assert.equal(value("ai_server_time_to_first_token_seconds_count"), 1);
  assert.equal(value("ai_server_inter_token_latency_seconds_count"), 1);
  assert.equal(value("ai_server_e2e_request_latency_seconds_count"), 1);
  const ttft = value("ai_server_time_to_first_token_seconds_sum");
  const e2e = value("ai_server_e2e_request_latency_seconds_sum");
  assert.ok(ttft > 0 && ttft < e2e, `time to first token ${ttft} s within the request's ${e2e} s`);
  assert.ok(value("ai_server_inter_token_latency_seconds_sum") > 0);
  assert.equal(value("ai_server_generated_tokens_total"), reply.eval_count);
  assert.equal(value("ai_server_prompt_tokens_total"), reply.prompt_eval_count);
  assert.equal(value("ai_server_model_load_duration_seconds_count"), 1);
  assert.ok(value("ai_server_model_load_duration_seconds_sum") > 0);
  assert.equal(value("ai_server_num_requests_running"), 0);
  assert.ok(value("ai_server_model_ram_bytes") > 0, "the loaded model's memory");
});
