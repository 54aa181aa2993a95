import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { writeFakeModel } from "../helpers/gguf-files.js";
import { postJson, readNdjson, sha256File, uploadBlob } from "../helpers/start-server.js";

let server: FakeServer;
before(async () => {
  // A small JSON limit proves blob uploads are not subject to it.
  server = await startFakeServer({ bodyLimitBytes: 4096 });
});
after(() => server.close());

interface Tags {
  models: Array<{ name: string; model: string; size: number; digest: string; modified_at: string; details: Record<string, unknown> }>;
}

async function tags(): Promise<Tags> {
  return (await (await fetch(`${server.baseUrl}/api/tags`)).json()) as Tags;
}

async function names(): Promise<string[]> {
  return (await tags()).models.map((m) => m.name).sort();
}

test("GET /api/tags lists the models with Ollama's fields; HEAD answers too", async () => {
  const { models } = await tags();
  const chat = models.find((m) => m.name === "chat:latest");
  assert.ok(chat);
  assert.equal(chat.model, "chat:latest");
  assert.match(chat.digest, /^[0-9a-f]{64}$/);
  assert.ok(chat.size > 0);
  assert.ok(!Number.isNaN(Date.parse(chat.modified_at)));
  assert.deepEqual(chat.details, { parent_model: "", format: "gguf", family: "llama", families: ["llama"], parameter_size: "32", quantization_level: "F32" });
  assert.equal((await fetch(`${server.baseUrl}/api/tags`, { method: "HEAD" })).status, 200);
});

test("blobs: HEAD is 404 then 200; POST streams any content type past the JSON limit, verifying the digest", async () => {
  const file = path.join(server.home, "big.bin");
  await writeFile(file, randomBytes(256 * 1024));
  const digest = await sha256File(file);
  assert.equal((await fetch(`${server.baseUrl}/api/blobs/${digest}`, { method: "HEAD" })).status, 404);
  const created = await fetch(`${server.baseUrl}/api/blobs/${digest}`, {
    method: "POST",
    headers: { "content-type": "application/octet-stream" },
    body: await readFile(file),
  });
  assert.equal(created.status, 201);
  assert.equal((await fetch(`${server.baseUrl}/api/blobs/${digest}`, { method: "HEAD" })).status, 200);
  const again = await fetch(`${server.baseUrl}/api/blobs/${digest}`, { method: "POST", body: await readFile(file) });
  assert.equal(again.status, 200, "an existing blob is not written again");
});

test("blobs: a digest mismatch is 400 and stores nothing; a malformed digest is 400", async () => {
  const wrong = `sha256:${"0".repeat(64)}`;
  const response = await fetch(`${server.baseUrl}/api/blobs/${wrong}`, { method: "POST", body: "some bytes" });
  assert.equal(response.status, 400);
  assert.match(((await response.json()) as { error: string }).error, /^digest mismatch: expected sha256:0{64}, got sha256:[0-9a-f]{64}$/);
  assert.equal((await fetch(`${server.baseUrl}/api/blobs/${wrong}`, { method: "HEAD" })).status, 404);
  const blobs = await readdir(path.join(server.home, "models", "blobs"));
  assert.ok(!blobs.some((name) => name.includes("0".repeat(64)) || name.startsWith(".partial")));
  const malformed = await fetch(`${server.baseUrl}/api/blobs/md5:abc`, { method: "POST", body: "x" });
  assert.equal(malformed.status, 400);
});

test("create from files streams status lines, ending in success", async () => {
  const digest = await uploadBlob(server.baseUrl, server.chatFile);
  const response = await postJson(server.baseUrl, "/api/create", { model: "streamed", files: { "model.gguf": digest } });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/x-ndjson");
  assert.deepEqual(await readNdjson(response), [
    { status: "parsing GGUF" },
    { status: `using existing layer ${digest}` },
    { status: "writing manifest" },
    { status: "success" },
  ]);
  assert.ok((await names()).includes("streamed:latest"));
});

test("create from an existing model with template, system, license and parameters; show reports them", async () => {
  const response = await postJson(server.baseUrl, "/api/create", {
    name: "custom", // the deprecated alias
    from: "chat",
    template: "{{ .System }} {{ .Prompt }}",
    system: "You are terse.",
    license: ["MIT", "Apache-2.0"],
    parameters: { temperature: 0.3, stop: ["<|end|>"] },
    stream: false,
  });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { status: "success" });
  const show = (await (await postJson(server.baseUrl, "/api/show", { model: "custom" })).json()) as Record<string, unknown>;
  assert.equal(show.template, "{{ .System }} {{ .Prompt }}");
  assert.equal(show.system, "You are terse.");
  assert.equal(show.license, "MIT\nApache-2.0");
  assert.equal(show.parameters, `stop${" ".repeat(27)}"<|end|>"\ntemperature${" ".repeat(20)}0.3`);
  assert.match(String(show.modelfile), /^FROM .*sha256-[0-9a-f]{64}$/m);
  assert.match(String(show.modelfile), /^PARAMETER temperature 0.3$/m);
  assert.deepEqual(show.capabilities, ["completion", "tools"]);
  assert.equal((show.model_info as Record<string, unknown>)["general.architecture"], "llama");
  assert.equal((show.details as Record<string, unknown>).family, "llama");
});

test("a corrupt, truncated or non-GGUF blob is refused with 400 and the reason; nothing changes", async () => {
  const before = await tags();
  const good = await readFile(server.chatFile);
  const cases: Array<[string, Buffer, RegExp]> = [
    ["text", Buffer.from("definitely not a model file, just some text"), /bad magic/],
    ["truncated", good.subarray(0, good.length - 20), /truncated/],
    ["corrupt", Buffer.concat([good.subarray(0, 8), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]), good.subarray(16)]), /tensor count \d+ is impossible/],
  ];
  for (const [label, bytes, reason] of cases) {
    const file = path.join(server.home, `${label}.gguf`);
    await writeFile(file, bytes);
    const digest = await uploadBlob(server.baseUrl, file);
    for (const stream of [true, false]) {
      const response = await postJson(server.baseUrl, "/api/create", { model: `bad-${label}`, files: { "model.gguf": digest }, stream });
      assert.equal(response.status, 400, `${label} stream=${stream}`);
      assert.match(response.headers.get("content-type") ?? "", /application\/json/);
      const { error } = (await response.json()) as { error: string };
      assert.match(error, /^invalid GGUF file: /);
      assert.match(error, reason);
    }
  }
  assert.deepEqual(await tags(), before, "the store is unchanged");
  const generate = await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "still alive?", stream: false });
  assert.equal(generate.status, 200, "the server still serves");
});

test("create refuses an unknown quantize type, adapters, a missing source, an unknown blob and an unknown base model", async () => {
  const digest = await sha256File(server.chatFile);
  const cases: Array<[Record<string, unknown>, number, RegExp]> = [
    [{ model: "q", from: "chat", quantize: "q9_9" }, 400, /^unknown quantization type "q9_9"/],
    [{ model: "a", from: "chat", adapters: { "lora.gguf": digest } }, 400, /adapters are not supported/],
    [{ model: "n" }, 400, /neither 'from' or 'files' was specified/],
    [{ model: "b", files: { "model.gguf": `sha256:${"1".repeat(64)}` } }, 404, /blob sha256:1{64} not found/],
    [{ model: "f", from: "nope" }, 404, /model "nope" not found/],
    [{ model: "bad name!", from: "chat" }, 400, /invalid model name/],
    [{ model: "p", from: "chat", parameters: { temperature: "warm" } }, 400, /^parameters\.temperature: /],
    [{ model: "s", files: { "a.gguf": digest, "b.gguf": digest } }, 400, /several GGUF files/],
  ];
  for (const [body, status, error] of cases) {
    const response = await postJson(server.baseUrl, "/api/create", body);
    assert.equal(response.status, status, JSON.stringify(body));
    assert.match(((await response.json()) as { error: string }).error, error, JSON.stringify(body));
  }
});

test("copy makes a second name; delete (JSON body, `name` or `model`) removes one; 404 for unknown models", async () => {
  const copied = await postJson(server.baseUrl, "/api/copy", { source: "chat", destination: "chat-copy:v1" });
  assert.equal(copied.status, 200);
  assert.equal(await copied.text(), "");
  assert.ok((await names()).includes("chat-copy:v1"));
  const show = await postJson(server.baseUrl, "/api/show", { model: "chat-copy:v1" });
  assert.equal(show.status, 200);

  const deleted = await fetch(`${server.baseUrl}/api/delete`, { method: "DELETE", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "chat-copy:v1" }) });
  assert.equal(deleted.status, 200);
  assert.ok(!(await names()).includes("chat-copy:v1"));
  assert.ok((await names()).includes("chat:latest"), "the original keeps its weights");
  assert.equal((await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "x", stream: false })).status, 200);

  const missingDelete = await fetch(`${server.baseUrl}/api/delete`, { method: "DELETE", body: JSON.stringify({ model: "chat-copy:v1" }) });
  assert.equal(missingDelete.status, 404);
  const missingCopy = await postJson(server.baseUrl, "/api/copy", { source: "nope", destination: "x" });
  assert.equal(missingCopy.status, 404);
  const badCopy = await postJson(server.baseUrl, "/api/copy", { source: "chat" });
  assert.equal(badCopy.status, 400);
  const missingShow = await postJson(server.baseUrl, "/api/show", { model: "nope" });
  assert.equal(missingShow.status, 404);
});

test("deleting a loaded model unloads it", async () => {
  await writeFakeModel(path.join(server.home, "doomed.gguf"));
  const digest = await uploadBlob(server.baseUrl, path.join(server.home, "doomed.gguf"));
  await postJson(server.baseUrl, "/api/create", { model: "doomed", files: { "m.gguf": digest }, template: "x {{ .Prompt }}", stream: false });
  assert.equal((await postJson(server.baseUrl, "/api/generate", { model: "doomed", prompt: "hi", stream: false })).status, 200);
  const ps = async (): Promise<string[]> => ((await (await fetch(`${server.baseUrl}/api/ps`)).json()) as Tags).models.map((m) => m.name);
  assert.ok((await ps()).includes("doomed:latest"));
  const deleted = await fetch(`${server.baseUrl}/api/delete`, { method: "DELETE", body: JSON.stringify({ model: "doomed" }) });
  assert.equal(deleted.status, 200);
  assert.ok(!(await ps()).includes("doomed:latest"));
});
