/**
 * Creating upstream models (POST /api/create with `upstream`): what is refused, with a 400 naming the field; what is
 * recorded (no weights, size 0) and shown; copies, `from`, delete. Endpoints are not contacted at create: the
 * addresses here point nowhere (a port nothing listens on), and a request then fails with the reason.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ensureFixtures } from "../fixtures/models.js";
import { freePort } from "../helpers/free-port.js";
import { createModel, postJson, startServer, type TestServer } from "../helpers/start-server.js";
import { createUpstream } from "./upstream-helpers.js";

let server: TestServer;
let nowhere: string;

before(async () => {
  server = await startServer({ config: { loadCooldownMs: "0" } });
  nowhere = `http://127.0.0.1:${await freePort()}/v1`;
});
after(() => server?.close());

async function refused(upstream: unknown, extra: Record<string, unknown> = {}): Promise<string> {
  const response = await createUpstream(server.baseUrl, "refused", upstream, extra);
  const body = (await response.json()) as { error: string };
  assert.equal(response.status, 400, JSON.stringify(body));
  return body.error;
}

test("create refuses a wrong upstream with a 400 naming the field; nothing is recorded", async () => {
  const ok = { url: nowhere, model: "m" };
  const cases: Array<[unknown, RegExp]> = [
    [{}, /^upstream\.endpoints: expected an array of endpoints/],
    [{ endpoints: [] }, /^upstream\.endpoints: at least one endpoint is required/],
    [{ endpoints: [{ ...ok, url: "ftp://host/v1" }] }, /^upstream\.endpoints\[0\]\.url: expected an http:\/\/ or https:\/\/ URL/],
    [{ endpoints: [{ ...ok, url: "not a url" }] }, /^upstream\.endpoints\[0\]\.url: expected an http/],
    [{ endpoints: [ok, { ...ok, url: "http://user:s3cret@host/v1" }] }, /^upstream\.endpoints\[1\]\.url: must not carry credentials/],
    [{ endpoints: [{ ...ok, url: "http://host/v1?key=1" }] }, /^upstream\.endpoints\[0\]\.url: must not have a query/],
    [{ endpoints: [{ ...ok, model: " " }] }, /^upstream\.endpoints\[0\]\.model: expected the model's name/],
    [{ endpoints: [{ url: nowhere }] }, /^upstream\.endpoints\[0\]\.model: expected the model's name/],
    [{ endpoints: [{ ...ok, weight: 0 }] }, /^upstream\.endpoints\[0\]\.weight: expected a positive integer/],
    [{ endpoints: [{ ...ok, weight: 1.5 }] }, /^upstream\.endpoints\[0\]\.weight: expected a positive integer/],
    [{ endpoints: [{ ...ok, weight: "2" }] }, /^upstream\.endpoints\[0\]\.weight: expected a positive integer/],
    [{ endpoints: [{ ...ok, api_key: "sk-x" }] }, /^upstream\.endpoints\[0\]: Unrecognized key: "api_key"/],
    [{ endpoints: [ok], timeout: 3 }, /^upstream: Unrecognized key: "timeout"/],
    [{ endpoints: [ok], capabilities: ["completion", "telepathy"] }, /^upstream\.capabilities\[1\]: expected one of completion, tools/],
    [{ endpoints: [ok], max_parallel: 0 }, /^upstream\.max_parallel: expected a positive integer/],
    [{ endpoints: [ok], connect_timeout: "soon" }, /^upstream\.connect_timeout: expected a positive duration/],
    [{ endpoints: [ok], first_byte_timeout: -1 }, /^upstream\.first_byte_timeout: expected a positive duration/],
    [{ endpoints: [{ ...ok, api_key_env: "1ABC" }] }, /^upstream\.endpoints\[0\]\.api_key_env: expected an environment variable name/],
  ];
  for (const [upstream, expected] of cases) assert.match(await refused(upstream), expected, JSON.stringify(upstream));
  const { models } = (await (await fetch(`${server.baseUrl}/api/tags`)).json()) as { models: unknown[] };
  assert.equal(models.length, 0);
});

test("api_key_env can never name this server's own settings or secrets", async () => {
  for (const name of ["AI_SERVER_ADMIN_KEY", "ai_server_redis_url", "AI_SERVER_DATABASE_URL", "HF_TOKEN", "HF_HOME", "HUGGING_FACE_HUB_TOKEN", "PGPASSWORD"]) {
    const error = await refused({ endpoints: [{ url: nowhere, model: "m", api_key_env: name }] });
    assert.match(error, /^upstream\.endpoints\[0\]\.api_key_env: .* one of this server's own settings or secrets/, name);
  }
});

test("upstream alone: not with files, from, quantize or an engine", async () => {
  const upstream = { endpoints: [{ url: nowhere, model: "m" }] };
  assert.match(await refused(upstream, { from: "x" }), /^upstream: .* cannot be combined with from/);
  assert.match(await refused(upstream, { files: { "a.gguf": `sha256:${"0".repeat(64)}` } }), /cannot be combined with files/);
  assert.match(await refused(upstream, { quantize: "Q4_K_M" }), /cannot be combined with quantize/);
  assert.match(await refused(upstream, { parameters: { engine: "llama-server" } }), /^parameters\.engine: /);
});

test("recorded without contacting the endpoints: listed with size 0, shown with its endpoints (keys by variable only)", async () => {
  const upstream = {
    endpoints: [
      { url: `${nowhere}/`, model: "meta-llama/Llama-3.1-70B-Instruct", api_key_env: "VLLM_KEY", weight: 2 },
      { url: "https://vllm-2.example:8000/v1", model: "llama" },
    ],
    capabilities: ["completion", "tools", "thinking"],
    max_parallel: 64,
    context_length: 131072,
    connect_timeout: "2s",
    first_byte_timeout: 90,
  };
  const response = await createUpstream(server.baseUrl, "big", upstream, { system: "Be brief.", parameters: { temperature: 0.2 } });
  assert.equal(response.status, 200, await response.text());
  const tags = (await (await fetch(`${server.baseUrl}/api/tags`)).json()) as { models: Array<Record<string, unknown>> };
  const big = tags.models.find((m) => m.name === "big:latest");
  assert.equal(big?.size, 0);
  assert.deepEqual(big?.details, { parent_model: "", format: "upstream", family: "upstream", families: ["upstream"], parameter_size: "", quantization_level: "" });
  const show = (await (await postJson(server.baseUrl, "/api/show", { model: "big" })).json()) as Record<string, unknown>;
  assert.deepEqual(show.upstream, {
    endpoints: [
      { url: nowhere, model: "meta-llama/Llama-3.1-70B-Instruct", weight: 2, api_key_env: "VLLM_KEY" },
      { url: "https://vllm-2.example:8000/v1", model: "llama", weight: 1 },
    ],
    capabilities: ["completion", "tools", "thinking"],
    max_parallel: 64,
    context_length: 131072,
    connect_timeout: 2,
    first_byte_timeout: 90,
  });
  assert.deepEqual(show.capabilities, ["completion", "tools", "thinking"]);
  assert.equal(show.system, "Be brief.");
  assert.match(String(show.parameters), /temperature\s+0\.2/);
  // What show returns can be sent back as is.
  assert.equal((await createUpstream(server.baseUrl, "again", show.upstream)).status, 200);
});

test("a request to an upstream model none of whose endpoints answers: 502 upstream_failed with each one's reason", async () => {
  assert.equal((await createUpstream(server.baseUrl, "dead", { endpoints: [{ url: nowhere, model: "m" }] })).status, 200);
  const response = await postJson(server.baseUrl, "/v1/chat/completions", { model: "dead", messages: [{ role: "user", content: "hi" }] });
  assert.equal(response.status, 502);
  const { error } = (await response.json()) as { error: { code: string; message: string } };
  assert.equal(error.code, "upstream_failed");
  assert.match(error.message, new RegExp(`no endpoint of upstream model "dead:latest" answers: ${nowhere.replace(/[.]/g, "\\.")}: connection refused`));
});

test("from an upstream model copies its endpoints; copy and delete work; quantize is refused", async () => {
  assert.equal((await createUpstream(server.baseUrl, "base", { endpoints: [{ url: nowhere, model: "m" }], capabilities: ["embedding"] })).status, 200);
  const derived = await postJson(server.baseUrl, "/api/create", { model: "derived", from: "base", system: "Speak French.", stream: false });
  assert.equal(derived.status, 200, await derived.text());
  const show = (await (await postJson(server.baseUrl, "/api/show", { model: "derived" })).json()) as Record<string, unknown>;
  assert.deepEqual(show.upstream, { endpoints: [{ url: nowhere, model: "m", weight: 1 }], capabilities: ["embedding"] });
  assert.equal(show.system, "Speak French.");
  const quantize = await postJson(server.baseUrl, "/api/create", { model: "q", from: "base", quantize: "Q4_K_M", stream: false });
  assert.equal(quantize.status, 400);
  assert.match(((await quantize.json()) as { error: string }).error, /^quantize: .* has no weights to quantize/);
  assert.equal((await postJson(server.baseUrl, "/api/copy", { source: "base", destination: "copied" })).status, 200);
  assert.deepEqual(((await (await postJson(server.baseUrl, "/api/show", { model: "copied" })).json()) as Record<string, unknown>).upstream, (show.upstream as object));
  const removed = await fetch(`${server.baseUrl}/api/delete`, { method: "DELETE", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "base" }) });
  assert.equal(removed.status, 200);
  assert.equal((await postJson(server.baseUrl, "/api/show", { model: "base" })).status, 404);
  assert.equal((await postJson(server.baseUrl, "/api/show", { model: "copied" })).status, 200);
});

test("an upstream model re-created over a local one (and back) replaces it", async () => {
  const fixtures = await ensureFixtures();
  await createModel(server.baseUrl, "swap", fixtures.chat);
  assert.equal((await createUpstream(server.baseUrl, "swap", { endpoints: [{ url: nowhere, model: "m" }] })).status, 200);
  let show = (await (await postJson(server.baseUrl, "/api/show", { model: "swap" })).json()) as Record<string, unknown>;
  assert.equal((show.details as { format: string }).format, "upstream");
  await createModel(server.baseUrl, "swap", fixtures.chat);
  show = (await (await postJson(server.baseUrl, "/api/show", { model: "swap" })).json()) as Record<string, unknown>;
  assert.equal((show.details as { format: string }).format, "gguf");
  assert.equal(show.upstream, undefined);
});
