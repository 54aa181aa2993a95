/**
 * Local quantization through POST /api/create (Ollama's `quantize`): the real server on port 0, llama.cpp's real
 * quantize tool (built beside llama-server by scripts/build-llama-server.mjs) on generated F16 models whose weight rows
 * are multiples of 256 (K-quants need that), and real inference on the results. Tests that need the tool skip with
 * the reason when it cannot be built here.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Ollama } from "ollama";
import { gguf, writeGguf } from "../fixtures/gguf-writer.js";
import { writeRandomModel, writeScriptedModel } from "../fixtures/models.js";
import { splitGguf } from "../fixtures/split-gguf.js";
import { createModel, postJson, readNdjson, startServer, uploadBlob, type TestServer } from "../helpers/start-server.js";
import { quantizeChildren, quantizeTool } from "./quantize-tool.js";

const tool = quantizeTool();
const REPLY = "Hello there, I am a quantized model.";
const QUANTIZING_DIGEST = "0000000000000000000";
/** The scripted model's tensors: token embeddings, 9 per layer (1 layer), output norm and output. */
const TENSORS = 12;

let dir: string;
let f16: string;
let q8Source: string;
let server: TestServer;
let ollama: Ollama;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-quantize-"));
  f16 = path.join(dir, "scripted-f16.gguf");
  q8Source = path.join(dir, "scripted-q8.gguf");
  // nEmbd and nFf of 256: every weight row is one K-quant super-block
  await writeScriptedModel(f16, { reply: REPLY, type: "F16", size: { nEmbd: 256, nFf: 256 }, name: "scripted-f16" });
  await writeScriptedModel(q8Source, { reply: REPLY, type: "Q8_0", size: { nEmbd: 256, nFf: 256 }, name: "scripted-q8" });
  // The quantize tool found as the server finds it by default: beside the llama-server of the build script's cache
  server = await startServer({ config: { gpu: "off", threads: 1, contextLength: 512, numParallel: 1 } });
  ollama = new Ollama({ host: server.baseUrl });
});

after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

async function show(name: string): Promise<{ quantization: string; digest: string }> {
  const response = await postJson(server.baseUrl, "/api/show", { model: name });
  assert.equal(response.status, 200);
  const body = (await response.json()) as { details: { quantization_level: string } };
  return { quantization: body.details.quantization_level, digest: server.app.services.store.require(name).modelDigest };
}

async function reply(name: string): Promise<string> {
  const response = await ollama.generate({ model: name, prompt: "Hi", options: { temperature: 0, num_predict: 32 } });
  return response.response ?? "";
}

/** The rows of the quantizations table (in the server's database). */
async function quantizations(): Promise<Array<{ source_digest: string; type: string; result_digest: string }>> {
  const rows = await server.app.services.database.all("SELECT source_digest, type, result_digest FROM quantizations ORDER BY created_at");
  return rows.map((row) => ({ source_digest: String(row.source_digest), type: String(row.type), result_digest: String(row.result_digest) }));
}

/** ~50 MB of F16 weights (rows of 512 and 2048): seconds of work for the tool on one thread. */
async function bigF16(): Promise<string> {
  const file = path.join(dir, "random-f16.gguf");
  if (!(await stat(file).catch(() => undefined))) {
    await writeRandomModel(file, { nEmbd: 512, nLayer: 4, nFf: 2048, nHead: 8, vocabSize: 8192, type: "F16", seed: 7, contextLength: 512 });
  }
  return file;
}

/** Reads a streamed answer until `text` has arrived (the rest stays unread). */
async function readUntil(response: Response, text: string): Promise<void> {
  assert.equal(response.status, 200);
  const reader = response.body!.getReader();
  let received = "";
  while (!received.includes(text)) {
    const { value, done } = await reader.read();
    assert.ok(!done, `the stream ended before "${text}": ${received}`);
    received += new TextDecoder().decode(value);
  }
}

async function headBlob(digest: string): Promise<number> {
  return (await fetch(`${server.baseUrl}/api/blobs/${digest}`, { method: "HEAD" })).status;
}

test("quantize q8_0 from an uploaded F16 GGUF: progress lines, the new quantization, a new blob, the same replies", { skip: tool.skip }, async () => {
  const source = await uploadBlob(server.baseUrl, f16);
  const response = await postJson(server.baseUrl, "/api/create", { model: "scripted:q8", files: { "model.gguf": source }, quantize: "q8_0" });
  assert.equal(response.status, 200);
  const lines = await readNdjson(response);

  assert.deepEqual(lines[0], { status: "parsing GGUF" });
  const progress = lines.filter((line) => line.status === "quantizing F16 model to Q8_0");
  assert.ok(progress.length >= 2, `progress lines: ${JSON.stringify(lines)}`);
  for (const line of progress) {
    assert.equal(line.digest, QUANTIZING_DIGEST);
    assert.equal(line.total, TENSORS);
  }
  const completed = progress.map((line) => line.completed as number);
  assert.deepEqual([...completed].sort((a, b) => a - b), completed, "progress only moves forward");
  assert.equal(completed.at(-1), TENSORS, "the last progress line says every tensor is written");

  const { quantization, digest } = await show("scripted:q8");
  assert.equal(quantization, "Q8_0");
  assert.notEqual(digest, source, "the model uses a new blob");
  assert.deepEqual(lines.slice(progress.length + 1), [
    { status: `creating new layer ${digest}` },
    { status: "writing manifest" },
    { status: "success" },
  ]);
  assert.equal(await headBlob(digest), 200);
  assert.equal(await headBlob(source), 404, "the uploaded F16 source, which no model uses, is removed");
  assert.deepEqual(await quantizations(), [{ source_digest: source, type: "Q8_0", result_digest: digest }]);
  // Q8_0 keeps the scripted model's weights (one-hot embeddings, one large logit) exact enough to answer the same
  assert.equal(await reply("scripted:q8"), REPLY);
});

test("quantize q4_K_M from an existing F16 model with the ollama client: K-quant mix, the source model is kept", { skip: tool.skip }, async () => {
  await createModel(server.baseUrl, "scripted:f16", f16);
  const source = server.app.services.store.require("scripted:f16").modelDigest;
  const statuses: Array<{ status: string; completed?: number; total?: number }> = [];
  for await (const part of await ollama.create({ model: "scripted:q4", from: "scripted:f16", quantize: "q4_K_M", stream: true })) {
    statuses.push({ status: part.status, ...(part.total !== undefined && { completed: part.completed, total: part.total }) });
  }
  assert.ok(statuses.some((s) => s.status === "quantizing F16 model to Q4_K_M" && s.completed === TENSORS && s.total === TENSORS), JSON.stringify(statuses));
  assert.equal(statuses.at(-1)?.status, "success");
  assert.ok(!statuses.some((s) => s.status === "parsing GGUF"), "a model made from another parses no uploaded file");

  const { quantization, digest } = await show("scripted:q4");
  assert.equal(quantization, "Q4_K_M");
  assert.notEqual(digest, source);
  assert.notEqual(digest, (await show("scripted:q8")).digest);
  assert.equal((await show("scripted:f16")).quantization, "F16", "the source model is unchanged");
  assert.equal(await headBlob(source), 200, "the source blob stays: a model uses it");
  assert.equal(await reply("scripted:q4"), REPLY);

  // stream: false answers one object once it is all done
  const quiet = await postJson(server.baseUrl, "/api/create", { model: "scripted:q5", from: "scripted:f16", quantize: "Q5_K_M", stream: false });
  assert.equal(quiet.status, 200);
  assert.deepEqual(await quiet.json(), { status: "success" });
  assert.equal((await show("scripted:q5")).quantization, "Q5_K_M");
});

test("a split F16 model (its parts linked for the tool) becomes one quantized file", { skip: tool.skip }, async () => {
  const parts = await splitGguf(f16, dir, "scripted-f16", 3);
  const digests = [];
  for (const part of parts) digests.push(await uploadBlob(server.baseUrl, part));
  // Split models come from pulls; /api/create takes one GGUF file, so the store records this one directly
  await server.app.services.store.create({ name: "split:f16", modelDigest: digests[0]!, splitDigests: digests });
  const response = await postJson(server.baseUrl, "/api/create", { model: "split:q8", from: "split:f16", quantize: "q8_0", stream: false });
  assert.equal(response.status, 200, await response.clone().text());
  const record = server.app.services.store.require("split:q8");
  assert.equal(record.metadata.quantizationLevel, "Q8_0");
  assert.equal(record.splitDigests, undefined, "one file");
  assert.ok(!digests.includes(record.modelDigest));
  assert.equal(await reply("split:q8"), REPLY);
});

test("the same source and type are quantized once: a second create reuses the result without running the tool", { skip: tool.skip }, async () => {
  const before = (await quantizations()).length;
  const first = (await quantizations()).find((row) => row.type === "Q8_0");
  assert.ok(first, "the Q8_0 quantization of the first test is recorded");

  // The same bytes uploaded again (the first create removed them), another spelling of the type
  const source = await uploadBlob(server.baseUrl, f16);
  assert.equal(source, first.source_digest);
  const response = await postJson(server.baseUrl, "/api/create", { model: "again:q8", files: { "model.gguf": source }, quantize: "Q8_0" });
  const lines = await readNdjson(response);
  assert.deepEqual(lines, [
    { status: "parsing GGUF" },
    { status: `using existing layer ${first.result_digest}` },
    { status: "writing manifest" },
    { status: "success" },
  ]);
  assert.equal((await show("again:q8")).digest, first.result_digest);
  assert.equal((await quantizations()).length, before, "no new quantization was recorded");

  // From the F16 model too: same weights, same type
  const fromModel = await postJson(server.baseUrl, "/api/create", { model: "again:q4", from: "scripted:f16", quantize: "q4_k_m", stream: false });
  assert.equal(fromModel.status, 200);
  assert.equal((await show("again:q4")).digest, (await show("scripted:q4")).digest);
  assert.equal((await quantizations()).length, before);

  // The type the source already is: nothing to do, the model uses the source's weights
  const same = await postJson(server.baseUrl, "/api/create", { model: "again:f16", from: "scripted:f16", quantize: "f16", stream: false });
  assert.equal(same.status, 200);
  assert.equal((await show("again:f16")).digest, (await show("scripted:f16")).digest);
});

test("refusals are 400 with the reason, and change nothing: a Q8_0 source, an unknown type, a type that needs an imatrix", async () => {
  const q8 = await uploadBlob(server.baseUrl, q8Source);
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ files: { "model.gguf": q8 }, quantize: "q4_K_M" }, /^quantization is only supported for F16, BF16 and F32 models: this model is Q8_0$/],
    [{ files: { "model.gguf": await uploadBlob(server.baseUrl, f16) }, quantize: "q9_9" }, /^unknown quantization type "q9_9": expected one of .*\bQ4_K_M\b.*\bQ8_0\b/],
    [{ files: { "model.gguf": await uploadBlob(server.baseUrl, f16) }, quantize: "iq2_xxs" }, /^IQ2_XXS needs an importance matrix \(imatrix\)/],
  ];
  for (const [fields, message] of cases) {
    const response = await postJson(server.baseUrl, "/api/create", { model: "refused", ...fields });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: string };
    assert.match(body.error, message);
  }
  assert.equal(server.app.services.store.get("refused"), undefined);
});

test("a missing quantize tool is a clear error, before any progress line", async () => {
  // AI_SERVER_LLAMA_QUANTIZE naming nothing; a llama-server (AI_SERVER_LLAMA_SERVER) with no llama-quantize beside it
  const missing = path.join(dir, "no-such-dir", "llama-quantize");
  const lonelyServer = path.join(dir, "lonely", "llama-server");
  await mkdir(path.dirname(lonelyServer), { recursive: true });
  await writeFile(lonelyServer, "#!/bin/sh\n", { mode: 0o755 });
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ llamaQuantize: missing }, `the quantize tool ${missing} (AI_SERVER_LLAMA_QUANTIZE) does not exist or is not executable`],
    [{ llamaServer: lonelyServer }, `there is no llama-quantize beside ${lonelyServer}: \`node scripts/build-llama-server.mjs\` adds it to its build, or set AI_SERVER_LLAMA_QUANTIZE`],
  ];
  for (const [config, reason] of cases) {
    const other = await startServer({ config: { gpu: "off", threads: 1, ...config } });
    try {
      const source = await uploadBlob(other.baseUrl, f16);
      const response = await postJson(other.baseUrl, "/api/create", { model: "never", files: { "model.gguf": source }, quantize: "q8_0" });
      assert.equal(response.status, 500);
      assert.deepEqual(await response.json(), { error: `local quantization needs llama.cpp's quantize tool: ${reason}` });
      assert.equal(other.app.services.store.get("never"), undefined);
    } finally {
      await other.close();
    }
  }
});

test("a tool that fails gives its last output lines, and leaves nothing behind", { skip: tool.skip }, async () => {
  // A GGUF this server reads (an F16 weight) but llama.cpp cannot load: an architecture it does not know
  const strange = path.join(dir, "strange-f16.gguf");
  await writeGguf(strange, {
    metadata: { "general.architecture": gguf.string("nonsense"), "general.file_type": gguf.u32(1) },
    tensors: [{ name: "weight", shape: [256, 4], type: "F16", data: () => [new Float32Array(1024)] }],
  });
  const source = await uploadBlob(server.baseUrl, strange);
  const response = await postJson(server.baseUrl, "/api/create", { model: "strange", files: { "model.gguf": source }, quantize: "q8_0" });
  assert.equal(response.status, 500);
  const { error } = (await response.json()) as { error: string };
  assert.match(error, /^quantizing to Q8_0 failed \(exit code 1\): .*unknown model architecture: 'nonsense'/);
  assert.equal(server.app.services.store.get("strange"), undefined);
  assert.deepEqual(await readdir(path.join(server.home, "models", "quantize")), []);
});

test("concurrent creates of one quantization share one run; one client leaving does not stop it for the other", { skip: tool.skip }, async () => {
  const big = await bigF16();
  const source = await uploadBlob(server.baseUrl, big);
  const leaving = new AbortController();
  const first = await postJson(server.baseUrl, "/api/create", { model: "shared:a", files: { "model.gguf": source }, quantize: "q4_K_M" }, { signal: leaving.signal });
  await readUntil(first, "quantizing F16 model to Q4_K_M");
  // A caller that joins gets the progress so far at once: once the second sees a progress line, it has joined
  const second = await postJson(server.baseUrl, "/api/create", { model: "shared:b", files: { "model.gguf": source }, quantize: "Q4_K_M" });
  const reader = second.body!.getReader();
  const firstChunk = await reader.read();
  assert.match(new TextDecoder().decode(firstChunk.value), /quantizing F16 model to Q4_K_M/);
  assert.equal(quantizeChildren().length, 1, "one tool for both");
  leaving.abort();
  let rest = "";
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value);
  assert.match(rest, /"status":"success"/);
  assert.equal(server.app.services.store.get("shared:a"), undefined);
  assert.equal(server.app.services.store.require("shared:b").metadata.quantizationLevel, "Q4_K_M");
  assert.equal((await quantizations()).filter((row) => row.source_digest === source).length, 1);
});

test("a client that disconnects stops the quantization: the tool is killed and nothing is left behind", { skip: tool.skip }, async () => {
  // IQ4_XS takes seconds on one thread here, so the tool is surely still running when we leave
  const source = await uploadBlob(server.baseUrl, await bigF16());
  const blobsBefore = (await readdir(path.join(server.home, "models", "blobs"))).sort();
  const rowsBefore = (await quantizations()).length;

  const controller = new AbortController();
  const response = await postJson(server.baseUrl, "/api/create", { model: "cancelled", files: { "model.gguf": source }, quantize: "iq4_xs" }, { signal: controller.signal });
  await readUntil(response, "quantizing F16 model to IQ4_XS");
  assert.equal(quantizeChildren().length, 1, "the tool runs");
  controller.abort();

  for (let waited = 0; quantizeChildren().length > 0; waited += 50) {
    assert.ok(waited < 10_000, "the tool is still running 10 s after the client left");
    await sleep(50);
  }
  // The server notices the end of the tool a moment after it exits: wait for its cleanup
  const tempDir = path.join(server.home, "models", "quantize");
  for (let waited = 0; (await readdir(tempDir)).length > 0; waited += 50) {
    assert.ok(waited < 5000, `the tool's output is still there: ${(await readdir(tempDir)).join(", ")}`);
    await sleep(50);
  }
  assert.equal(server.app.services.store.get("cancelled"), undefined);
  assert.equal((await quantizations()).length, rowsBefore);
  assert.deepEqual((await readdir(path.join(server.home, "models", "blobs"))).sort(), blobsBefore, "no blob was added");
});
