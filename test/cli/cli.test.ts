import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { openModelStore } from "../../src/store/open-store.js";
import { writeScriptedModel } from "../fixtures/models.js";

const run = promisify(execFile);
const cli = path.resolve("src/cli/main.ts");

let home: string;
let gguf: string;

before(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), "ai-server-cli-"));
  gguf = path.join(home, "scripted.gguf");
  await writeScriptedModel(gguf, { reply: "Hi from the CLI." });
});

after(async () => {
  await rm(home, { recursive: true, force: true });
});

/** Runs the real CLI with a store under `home` and no server listening (port 1 never answers). */
function aiServer(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ["--import", "tsx", cli, ...args], {
    env: { ...process.env, AI_SERVER_HOME: path.join(home, "data"), AI_SERVER_HOST: "127.0.0.1:1" },
  });
}

test("create, list, cp and rm work on the local store when no server runs", async () => {
  const created = await aiServer("create", "mymodel", "-f", gguf);
  assert.match(created.stdout, /created 'mymodel' \(in the local store\)/);

  const listed = await aiServer("list");
  assert.match(listed.stdout, /mymodel:latest/);
  assert.match(listed.stdout, /F32/);

  await aiServer("cp", "mymodel", "other:v1");
  await aiServer("rm", "mymodel");
  const { store, close } = await openModelStore(path.join(home, "data"));
  try {
    assert.deepEqual(store.list().map((m) => m.name), ["other:v1"]);
    assert.equal(await store.blobs.has(store.require("other:v1").modelDigest), true, "the copy keeps the weights");
  } finally {
    await close();
  }
});

test("create rejects a file that is not GGUF and records nothing", async () => {
  const junk = path.join(home, "junk.gguf");
  await writeFile(junk, "this is not a model");
  await assert.rejects(aiServer("create", "junk", "-f", junk), (error: Error & { stderr?: string }) => {
    assert.match(error.stderr ?? "", /invalid GGUF file/);
    return true;
  });
  const listed = await aiServer("list");
  assert.doesNotMatch(listed.stdout, /junk/);
});
