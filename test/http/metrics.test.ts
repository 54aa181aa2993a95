/**
 * GET /metrics: strict Prometheus text whose counters, histograms and gauges move with real HTTP requests. The
 * engine is the fake one (these are counters of the HTTP and scheduling path; a real-inference check is in
 * metrics-real.test.ts); pulls run against the fake Hub and CDN on loopback, which stand in for the internet.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { InternalError, ModelLoadError } from "../../src/domain/errors.js";
import { PULL_REPOS } from "../fixtures/pull-fixtures.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { startFakeInternet, type FakeInternet } from "../helpers/fake-internet.js";
import { writeFakeModel } from "../helpers/gguf-files.js";
import { parsePrometheusText, samplesOf, valueOf, type Family } from "../helpers/prometheus-text.js";
import { createModel, postJson, readNdjson, startServer, type TestServer } from "../helpers/start-server.js";
import { PULL_TEST_SETTINGS } from "../pull/pull-helpers.js";

const engine = new FakeEngine();
let server: TestServer;
let internet: FakeInternet;
let hfHome: string;
const hi = [{ role: "user", content: "Hi" }];
const CHAT = { model: "chat:latest" };

before(async () => {
  internet = await startFakeInternet();
  hfHome = await mkdtemp(path.join(os.tmpdir(), "ai-server-hf-home-"));
  server = await startServer({ engine, config: { ...internet.config, ...PULL_TEST_SETTINGS, hfHome, numParallel: 2 } });
  const file = path.join(server.home, "chat.gguf");
  await writeFakeModel(file);
  await createModel(server.baseUrl, "chat", file);
  const other = path.join(server.home, "broken.gguf");
  await writeFakeModel(other, { contextLength: 4096 }); // other weights: an instance of its own
  await createModel(server.baseUrl, "broken", other);
});

after(async () => {
  await server?.close();
  await internet?.close();
  if (hfHome) await rm(hfHome, { recursive: true, force: true });
});

async function scrape(): Promise<Map<string, Family>> {
  const response = await fetch(`${server.baseUrl}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await response.text());
}

/** A value that may be absent (a labelled series appears at its first observation): absent counts as 0. */
function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  return valueOf(families, name, labels) ?? 0;
}

async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test("the exposition parses strictly and has every family operators chart, with its type", async () => {
  const families = await scrape();
  const expected: Record<string, Family["type"]> = {
    ai_server_num_requests_running: "gauge",
    ai_server_num_requests_waiting: "gauge",
    ai_server_time_to_first_token_seconds: "histogram",
    ai_server_inter_token_latency_seconds: "histogram",
    ai_server_e2e_request_latency_seconds: "histogram",
    ai_server_request_queue_time_seconds: "histogram",
    ai_server_request_prefill_time_seconds: "histogram",
    ai_server_request_success_total: "counter",
    ai_server_prompt_tokens_total: "counter",
    ai_server_cached_prompt_tokens_total: "counter",
    ai_server_generated_tokens_total: "counter",
    ai_server_model_load_duration_seconds: "histogram",
    ai_server_model_load_failures_total: "counter",
    ai_server_engine_crashes_total: "counter",
    ai_server_rate_limited_requests_total: "counter",
    ai_server_pull_downloaded_bytes_total: "counter",
    ai_server_jobs: "gauge",
    ai_server_model_ram_bytes: "gauge",
    ai_server_model_vram_bytes: "gauge",
    ai_server_http_requests_total: "counter",
    ai_server_process_resident_memory_bytes: "gauge",
  };
  for (const [name, type] of Object.entries(expected)) {
    assert.equal(families.get(name)?.type, type, `${name} is a ${type}`);
    assert.notEqual(families.get(name)?.help, "", `${name} has a help text`);
  }
  assert.deepEqual(
    samplesOf(families, "ai_server_jobs").map((s) => s.labels.state).sort(),
    ["cancelled", "failed", "queued", "running", "succeeded"],
    "every job state, 0 included",
  );
});

test("a strict reader: a malformed exposition is refused (the checks above can fail)", () => {
  assert.throws(() => parsePrometheusText("no_type_line 1\n"), /outside its family/);
  assert.throws(() => parsePrometheusText('# TYPE a counter\na{b="c} 1\n'), /bad label/);
  assert.throws(() => parsePrometheusText("# TYPE a counter\na 1\na 2\n"), /twice/);
  assert.throws(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'), /cumulative/);
  assert.throws(() => parsePrometheusText("# TYPE a gauge\na one\n"), /bad value/);
});

test("generations move the token counters, the latency histograms and the finished requests, labelled by model", async () => {
  engine.script = {}; // "Hello", " world": 2 tokens; 3 prompt tokens
  const before = await scrape();
  const ollama = await postJson(server.baseUrl, "/api/chat", { model: "chat", messages: hi, stream: false });
  assert.equal(ollama.status, 200);
  const streamed = await postJson(server.baseUrl, "/v1/chat/completions", { model: "chat", messages: hi, stream: true });
  assert.match(await streamed.text(), /\[DONE\]/);
  const after = await scrape();
  const moved = (name: string, labels: Record<string, string> = CHAT): number => value(after, name, labels) - value(before, name, labels);
  assert.equal(moved("ai_server_generated_tokens_total"), 4);
  assert.equal(moved("ai_server_prompt_tokens_total"), 6);
  assert.equal(moved("ai_server_request_success_total", { ...CHAT, finished_reason: "stop" }), 2);
  for (const histogram of ["time_to_first_token", "inter_token_latency", "e2e_request_latency", "request_queue_time", "request_prefill_time"]) {
    assert.equal(moved(`ai_server_${histogram}_seconds_count`), 2, `${histogram}: one observation per generation`);
  }
  assert.ok(moved("ai_server_e2e_request_latency_seconds_sum") >= moved("ai_server_time_to_first_token_seconds_sum"), "a generation ends after its first token");
  assert.ok(value(after, "ai_server_model_load_duration_seconds_count", CHAT) >= 1, "the first request loaded the model");
  assert.equal(moved("ai_server_http_requests_total", { method: "POST", route: "/api/chat", status: "200" }), 1);
  assert.equal(moved("ai_server_num_requests_running"), 0);
  assert.equal(value(after, "ai_server_model_ram_bytes", CHAT), 1000, "the fake model's memory");
});

test("requests running and waiting: every slot held by an endless generation, one more waiting, then all gone", async () => {
  engine.script = { endless: true, delayMs: 20 };
  const stop = new AbortController();
  const open = async (): Promise<Response> => {
    const response = await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "Hi" }, { signal: stop.signal });
    await response.body?.getReader().read(); // generating
    return response;
  };
  try {
    await Promise.all([open(), open()]);
    const waiting = postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "Hi" }, { signal: stop.signal }).catch(() => undefined);
    await eventually("one request waits", async () => value(await scrape(), "ai_server_num_requests_waiting", CHAT) === 1);
    const families = await scrape();
    assert.equal(value(families, "ai_server_num_requests_running", CHAT), 2);
    assert.equal(value(families, "ai_server_model_active_requests", CHAT), 2, "the older per-model gauges agree");
    assert.equal(value(families, "ai_server_model_queued_requests", CHAT), 1);
    stop.abort();
    await waiting;
  } finally {
    stop.abort();
    engine.script = {};
  }
  await eventually("no request is left", async () => {
    const families = await scrape();
    return value(families, "ai_server_num_requests_running", CHAT) === 0 && value(families, "ai_server_num_requests_waiting", CHAT) === 0;
  });
});

test("a failed load counts as a load failure of its model; a generation that fails counts as no success", async () => {
  const before = await scrape();
  engine.script = { loadError: new ModelLoadError("the weights are damaged") };
  try {
    const refused = await postJson(server.baseUrl, "/api/chat", { model: "broken", messages: hi, stream: false });
    assert.equal(refused.status, 500);
  } finally {
    engine.script = {};
  }
  engine.script = { failAfter: { events: 1, error: new InternalError("the engine failed") } };
  try {
    const lines = await readNdjson(await postJson(server.baseUrl, "/api/chat", { model: "chat", messages: hi }));
    assert.match(String(lines.at(-1)?.error), /the engine failed/);
  } finally {
    engine.script = {};
  }
  const after = await scrape();
  assert.equal(value(after, "ai_server_model_load_failures_total", { model: "broken:latest" }) - value(before, "ai_server_model_load_failures_total", { model: "broken:latest" }), 1);
  assert.equal(value(after, "ai_server_model_load_duration_seconds_count", { model: "broken:latest" }), 0, "no load duration for a failed load");
  const successes = (families: Map<string, Family>): number => samplesOf(families, "ai_server_request_success_total").reduce((sum, s) => sum + s.value, 0);
  assert.equal(successes(after), successes(before));
});

test("rate-limited requests and engine crashes are counted when the code that sees them reports them", async () => {
  const { metrics } = server.app.services;
  metrics.rateLimited("rpm");
  metrics.rateLimited("maxParallel");
  metrics.rateLimited("maxParallel");
  metrics.engineCrashed("chat:latest");
  const families = await scrape();
  assert.equal(value(families, "ai_server_rate_limited_requests_total", { limit: "rpm" }), 1);
  assert.equal(value(families, "ai_server_rate_limited_requests_total", { limit: "max_parallel" }), 2);
  assert.equal(value(families, "ai_server_engine_crashes_total", CHAT), 1);
});

test("a pull counts its downloaded bytes and its job by state", async () => {
  const before = await scrape();
  const response = await postJson(server.baseUrl, "/api/pull", { model: `hf.co/${PULL_REPOS.scripted}` });
  const lines = await readNdjson(response);
  assert.equal(lines.at(-1)?.status, "success");
  const size = internet.hub.file(PULL_REPOS.scripted, "scripted-Q8_0.gguf")?.size ?? 0;
  assert.ok(size > 0);
  const after = await scrape();
  assert.equal(value(after, "ai_server_pull_downloaded_bytes_total") - value(before, "ai_server_pull_downloaded_bytes_total"), size);
  assert.equal(value(after, "ai_server_jobs", { state: "succeeded" }) - value(before, "ai_server_jobs", { state: "succeeded" }), 1);
  assert.equal(value(after, "ai_server_jobs", { state: "running" }), 0);
});
