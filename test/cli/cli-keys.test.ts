/**
 * `ai-server keys create|list|revoke` as a child process: on the store when no server runs, through the admin
 * routes when one does (with AI_SERVER_API_KEY once keys are required); the other commands send the key too, and the
 * CLI's own in-process server takes a key of its own.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import type { WireCreatedKey, WireKey } from "../../src/api/admin/keys.js";
import { KeyStore } from "../../src/auth/key-store.js";
import { openDatabase } from "../../src/store/database.js";
import { dataPaths } from "../../src/store/open-store.js";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { writeFakeModel } from "../helpers/gguf-files.js";

const run = promisify(execFile);
const cli = path.resolve("src/cli/main.ts");
const KEY = /^ais_[a-z0-9]{8}_[A-Za-z0-9_-]{43}$/;

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-cli-keys-"));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The real CLI; `env` on top of a home under the temp dir and no server (port 1 never answers). */
function aiServer(env: Record<string, string>, ...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ["--import", "tsx", cli, ...args], {
    env: { ...process.env, AI_SERVER_HOME: path.join(dir, "local"), AI_SERVER_HOST: "127.0.0.1:1", AI_SERVER_API_KEY: "", AI_SERVER_ADMIN_KEY: "", ...env },
  });
}

/** A command that must fail: its stderr. */
async function failing(env: Record<string, string>, ...args: string[]): Promise<string> {
  try {
    await aiServer(env, ...args);
  } catch (error) {
    return (error as { stderr: string }).stderr;
  }
  assert.fail(`ai-server ${args.join(" ")} succeeded`);
}

/** The keys of a home, read as the server reads them. */
async function storedKeys(home: string): Promise<{ keys: KeyStore; close(): Promise<void> }> {
  const db = await openDatabase({ file: dataPaths(home).database });
  return { keys: await KeyStore.open(db), close: () => db.close() };
}

describe("with no server running", () => {
  test("create prints the key alone on stdout, once; the store holds its hash; list shows it; revoke ends it", async () => {
    const created = await aiServer({}, "keys", "create", "--name", "ci", "--scope", "inference", "--models", "chat,hf.co/owner/repo:Q8_0", "--rpm", "60", "--tpm", "5000", "--max-parallel", "2", "--expires", "30d");
    const key = created.stdout.trim();
    assert.match(key, KEY);
    assert.match(created.stderr, /created key "ci" \(id [a-z0-9]{8}, scope inference, models chat:latest, hf.co\/owner\/repo:Q8_0, expires \d{4}-/);
    assert.match(created.stderr, /in the local store/);
    assert.match(created.stderr, /shown this once/);

    const store = await storedKeys(path.join(dir, "local"));
    try {
      const check = store.keys.check(key);
      assert.equal(check.ok, true);
      assert.deepEqual(check.ok && check.record.limits, { rpm: 60, tpm: 5000, maxParallel: 2 });
    } finally {
      await store.close();
    }

    const id = key.slice(4, 12);
    // EXPIRES in 30 days; LAST USED by the check above
    const table = (await aiServer({}, "keys", "list")).stdout;
    assert.match(table, /^ID\s+NAME\s+SCOPE\s+MODELS\s+LIMITS\s+EXPIRES\s+LAST USED\s+STATUS$/m);
    assert.match(table, new RegExp(`^${id}\\s+ci\\s+inference\\s+chat:latest,hf.co/owner/repo:Q8_0\\s+60 rpm, 5000 tpm, 2 parallel\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\s+active$`, "m"));
    const listed = JSON.parse((await aiServer({}, "keys", "list", "--json")).stdout) as WireKey[];
    assert.equal(listed.length, 1);
    assert.equal("key" in (listed[0] ?? {}), false, "no secret in the list");

    assert.match((await aiServer({}, "keys", "revoke", id)).stdout, new RegExp(`revoked key ${id} \\("ci"\\)`));
    const after = JSON.parse((await aiServer({}, "keys", "list", "--json")).stdout) as WireKey[];
    assert.equal(after[0]?.status, "revoked");
  });

  test("bad options are refused before anything is stored", async () => {
    assert.match(await failing({}, "keys", "create", "--name", "x", "--scope", "root"), /scope/);
    assert.match(await failing({}, "keys", "create", "--name", "x", "--scope", "admin", "--rpm", "0"), /at least 1/);
    assert.match(await failing({}, "keys", "create", "--name", "x", "--scope", "admin", "--expires", "soon"), /expires/);
    assert.match(await failing({}, "keys", "create", "--scope", "admin"), /--name/);
    assert.match(await failing({}, "keys", "revoke", "nosuchid"), /API key "nosuchid" not found/);
  });

  test("with keys in the store, a command that starts its own server (show) still works: that server takes a key of the command's own", async () => {
    const home = path.join(dir, "owned");
    const env = { AI_SERVER_HOME: home, AI_SERVER_ENGINE: "llama-cpp", AI_SERVER_GPU: "off" };
    const file = path.join(dir, "model.gguf");
    await writeFakeModel(file);
    await aiServer(env, "create", "mine", "-f", file);
    await aiServer(env, "keys", "create", "--name", "admin", "--scope", "admin");
    const shown = await aiServer(env, "show", "mine");
    assert.match(shown.stdout, /architecture\s+llama/);
  });
});

describe("with a server running", () => {
  let server: FakeServer;
  let env: Record<string, string>;

  before(async () => {
    server = await startFakeServer();
    // Another home for the CLI: whatever it does lands in the server's store or nowhere
    env = { AI_SERVER_HOST: server.baseUrl, AI_SERVER_HOME: path.join(dir, "elsewhere") };
  });

  after(async () => {
    await server.close();
  });

  test("create goes through POST /api/keys: open while no key exists, then only with an admin key", async () => {
    const first = await aiServer(env, "keys", "create", "--name", "admin", "--scope", "admin");
    const admin = first.stdout.trim();
    assert.match(admin, KEY);
    assert.match(first.stderr, new RegExp(`on the server at ${server.baseUrl}`));
    assert.equal(server.app.services.keys.check(admin).ok, true, "in the server's store");

    // Authentication is on now: without a key the CLI is told what to set
    assert.match(await failing(env, "keys", "list"), /wants an admin key .*AI_SERVER_API_KEY/);
    const withKey = { ...env, AI_SERVER_API_KEY: admin };
    const created = JSON.parse((await aiServer(withKey, "keys", "create", "--name", "app", "--scope", "inference", "--json")).stdout) as WireCreatedKey;
    assert.match(created.key, KEY);
    assert.equal(created.scope, "inference");
    const listed = JSON.parse((await aiServer(withKey, "keys", "list", "--json")).stdout) as WireKey[];
    assert.deepEqual(listed.map((k) => k.name), ["admin", "app"]);

    // An inference key may not manage keys
    assert.match(await failing({ ...env, AI_SERVER_API_KEY: created.key }, "keys", "list"), /needs an admin key/);

    await aiServer(withKey, "keys", "revoke", created.id);
    const check = server.app.services.keys.check(created.key);
    assert.equal(!check.ok && check.reason, "revoked");
  });

  test("the other commands send AI_SERVER_API_KEY (or AI_SERVER_ADMIN_KEY) too", async () => {
    const { key } = await server.app.services.keys.create({ name: "lister", scope: "inference" });
    assert.match(await failing(env, "list"), /API key is required/);
    assert.match((await aiServer({ ...env, AI_SERVER_API_KEY: key }, "list")).stdout, /chat:latest/);
    const adminSecret = "the-admin-key-from-the-setting-0123456789abcdef";
    await server.app.services.keys.ensureSettingKey(adminSecret);
    assert.match((await aiServer({ ...env, AI_SERVER_ADMIN_KEY: adminSecret }, "jobs", "--json")).stdout, /^\[/);
  });
});
