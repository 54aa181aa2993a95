/**
 * The safe default: `ai-server serve` bound beyond loopback with no key refuses to start (non-zero exit, a message
 * saying how), and starts once there is a key, AI_SERVER_ADMIN_KEY, or AI_SERVER_ALLOW_OPEN=1. The server runs as a
 * child process, as a user starts it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { KeyStore } from "../../src/auth/key-store.js";
import { isLoopbackHost, openAddressRefusal } from "../../src/auth/open-address.js";
import { loadConfig } from "../../src/config/load.js";
import { openDatabase } from "../../src/store/database.js";
import { dataPaths } from "../../src/store/open-store.js";

const cli = path.resolve("src/cli/main.ts");
let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-open-"));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * Runs `ai-server serve` until it exits or says it is ready (then stops it with SIGTERM): its exit code (null when
 * it got ready) and its output.
 */
function serve(env: Record<string, string>): Promise<{ code: number | null; ready: boolean; output: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", cli, "serve"], {
    env: { ...process.env, AI_SERVER_ENGINE: "llama-cpp", AI_SERVER_GPU: "off", AI_SERVER_THREADS: "1", AI_SERVER_ADMIN_KEY: "", AI_SERVER_ALLOW_OPEN: "", AI_SERVER_AUTH: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let ready = false;
  return new Promise((resolve, reject) => {
    const collect = (chunk: Buffer): void => {
      output += chunk.toString();
      if (!ready && output.includes("ai-server is ready")) {
        ready = true;
        child.kill("SIGTERM");
      }
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code: ready ? null : code, ready, output }));
  });
}

describe("serve on 0.0.0.0", () => {
  test("with no key: exits 1 saying how to create one, set AI_SERVER_ADMIN_KEY, or allow it open", async () => {
    const home = path.join(dir, "nokey");
    const result = await serve({ AI_SERVER_HOST: "0.0.0.0:0", AI_SERVER_HOME: home });
    assert.equal(result.ready, false, result.output);
    assert.equal(result.code, 1, result.output);
    assert.match(result.output, /refusing to start: AI_SERVER_HOST=0\.0\.0\.0:0 listens on 0\.0\.0\.0:0, beyond this machine, and no API key exists/);
    assert.match(result.output, /ai-server keys create --name admin --scope admin/);
    assert.match(result.output, /AI_SERVER_ADMIN_KEY/);
    assert.match(result.output, /AI_SERVER_ALLOW_OPEN=1/);
  });

  test("starts with AI_SERVER_ALLOW_OPEN=1, with AI_SERVER_ADMIN_KEY, or once a key exists", async () => {
    const allowed = await serve({ AI_SERVER_HOST: "0.0.0.0:0", AI_SERVER_HOME: path.join(dir, "open"), AI_SERVER_ALLOW_OPEN: "1" });
    assert.equal(allowed.ready, true, allowed.output);
    const secret = "an-admin-key-for-unattended-deployments-0123456789";
    const withSetting = await serve({ AI_SERVER_HOST: "0.0.0.0:0", AI_SERVER_HOME: path.join(dir, "setting"), AI_SERVER_ADMIN_KEY: secret });
    assert.equal(withSetting.ready, true, withSetting.output);
    assert.ok(!withSetting.output.includes(secret), "the admin key is never logged");
    const home = path.join(dir, "withkey");
    const first = await serve({ AI_SERVER_HOST: "0.0.0.0:0", AI_SERVER_HOME: home });
    assert.equal(first.code, 1);
    const db = await openDatabase({ file: dataPaths(home).database });
    await (await KeyStore.open(db)).create({ name: "admin", scope: "admin" });
    await db.close();
    const keyed = await serve({ AI_SERVER_HOST: "0.0.0.0:0", AI_SERVER_HOME: home });
    assert.equal(keyed.ready, true, keyed.output);
  });
});

test("loopback addresses are told from the others", () => {
  for (const host of ["localhost", "127.0.0.1", "127.8.9.10", "::1", "[::1]", "::ffff:127.0.0.1"]) assert.equal(isLoopbackHost(host), true, host);
  for (const host of ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "myhost.lan", "128.0.0.1", "127.0.0.1.evil.com"]) assert.equal(isLoopbackHost(host), false, host);
});

test("the refusal only applies beyond loopback, with no usable key, unless allowed open", async () => {
  const home = path.join(dir, "unit");
  const config = (settings: Record<string, string>) => loadConfig({}, { home, host: "0.0.0.0:11434", ...settings });
  assert.equal(await openAddressRefusal(loadConfig({}, { home, host: "127.0.0.1:11434" })), undefined);
  assert.equal(await openAddressRefusal(loadConfig({}, { home, host: "http://[::1]:8080" })), undefined);
  assert.match((await openAddressRefusal(config({}))) ?? "", /refusing to start/);
  assert.match((await openAddressRefusal(loadConfig({}, { home, host: "192.168.1.5" }))) ?? "", /192\.168\.1\.5:11434/);
  assert.equal(await openAddressRefusal(config({ allowOpen: "1" })), undefined);
  // A key that can no longer be used does not count
  const db = await openDatabase({ file: dataPaths(home).database });
  const keys = await KeyStore.open(db);
  const { record } = await keys.create({ name: "gone", scope: "admin" });
  await keys.revoke(record.id);
  assert.match((await openAddressRefusal(config({}))) ?? "", /refusing to start/);
  await keys.create({ name: "works", scope: "inference" });
  await db.close();
  assert.equal(await openAddressRefusal(config({})), undefined);
});
