/**
 * `ai-server create NAME -f FILE -q TYPE` (like `ollama create -q`): the real CLI, through a running server and on the
 * local store when none runs, with llama.cpp's real quantize tool (skipped with the reason where it cannot be built).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { openModelStore } from "../../src/store/open-store.js";
import { writeScriptedModel } from "../fixtures/models.js";
import { sha256File, startServer } from "../helpers/start-server.js";
import { quantizeTool } from "./quantize-tool.js";

const run = promisify(execFile);
const cli = path.resolve("src/cli/main.ts");
const tool = quantizeTool();

let dir: string;
let f16: string;
let q8: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-cli-quantize-"));
  f16 = path.join(dir, "f16.gguf");
  q8 = path.join(dir, "q8.gguf");
  await writeScriptedModel(f16, { reply: "Quantized by the CLI.", type: "F16", size: { nEmbd: 256, nFf: 256 } });
  await writeScriptedModel(q8, { reply: "Quantized by the CLI.", type: "Q8_0", size: { nEmbd: 256, nFf: 256 } });
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the real CLI against `host` (a server there, or none: port 1 never answers) with its store under `home`. */
function aiServer(host: string, home: string, ...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ["--import", "tsx", cli, ...args], {
    env: { ...process.env, AI_SERVER_HOME: home, AI_SERVER_HOST: host, AI_SERVER_THREADS: "1" },
  });
}

test("create -q on the local store when no server runs: quantized, recorded, the source not kept", { skip: tool.skip }, async () => {
  const home = path.join(dir, "local");
  const created = await aiServer("127.0.0.1:1", home, "create", "local-q8", "-f", f16, "-q", "q8_0");
  assert.match(created.stdout, /created 'local-q8' \(in the local store\)/);
  const { store, close } = await openModelStore(home);
  try {
    const model = store.require("local-q8");
    assert.equal(model.metadata.quantizationLevel, "Q8_0");
    assert.equal(await store.blobs.has(await sha256File(f16)), false, "the F16 copy no model uses is removed");
    assert.deepEqual(await store.blobs.list(), [model.modelDigest]);
  } finally {
    await close();
  }
});

test("create --quantize through the running server", { skip: tool.skip }, async () => {
  const server = await startServer({ config: { gpu: "off", threads: 1 } });
  try {
    const host = new URL(server.baseUrl).host;
    const created = await aiServer(host, path.join(dir, "unused"), "create", "served-q4", "-f", f16, "--quantize", "q4_K_M");
    assert.match(created.stdout, /created 'served-q4' \(via the running server\)/);
    assert.equal(server.app.services.store.require("served-q4").metadata.quantizationLevel, "Q4_K_M");
  } finally {
    await server.close();
  }
});

test("create -q refuses a source that is already quantized, with the reason", async () => {
  await assert.rejects(aiServer("127.0.0.1:1", path.join(dir, "refused"), "create", "nope", "-f", q8, "-q", "q4_K_M"), (error: Error & { stderr?: string }) => {
    assert.match(error.stderr ?? "", /quantization is only supported for F16, BF16 and F32 models: this model is Q8_0/);
    return true;
  });
});
