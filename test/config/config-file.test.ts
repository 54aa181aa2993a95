import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { ConfigError, loadConfig, resolveConfig } from "../../src/config/load.js";

// Settings from the environment and a config file, validated together; `ai-server config` shows where each came from.

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-config-"));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

/** The ConfigError `work` throws (fails when it throws nothing or something else). */
function configError(work: () => unknown): ConfigError {
  try {
    work();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a ConfigError");
}

test("a JSON file sets settings by their variable or its short name; the environment wins; sources say which", async () => {
  const json = await file(
    "settings.json",
    JSON.stringify({ AI_SERVER_THREADS: 3, keep_alive: "10m", preload: ["a", "b:q8"], allow_open: true, num_parallel: 2, host: "0.0.0.0:9999" }),
  );
  const { config, sources, file: read } = resolveConfig({ AI_SERVER_CONFIG: json, AI_SERVER_NUM_PARALLEL: "4", AI_SERVER_MAX_QUEUE: "" }, { home: dir });
  assert.equal(read, json);
  assert.equal(config.threads, 3);
  assert.equal(config.keepAliveMs, 600_000);
  assert.deepEqual(config.preload, ["a", "b:q8"]);
  assert.equal(config.allowOpen, true);
  assert.equal(config.numParallel, 4, "the environment wins over the file");
  assert.equal(config.host, "0.0.0.0:9999");
  assert.equal(config.maxQueue, 512, "an empty variable is unset");
  assert.equal(sources.threads, "file");
  assert.equal(sources.numParallel, "env");
  assert.equal(sources.maxQueue, "default");
  assert.equal(sources.logLevel, "default");
});

test("a TOML file works the same (smol-toml)", async () => {
  const toml = await file(
    "settings.toml",
    ['# comment', 'threads = 2', 'AI_SERVER_KEEP_ALIVE = "1h"', 'origins = ["https://a.example", "https://*.b.example"]', 'memory_budget = "8GiB"', 'hf_token = "hf_secret"'].join("\n"),
  );
  const { config, sources } = resolveConfig({ AI_SERVER_CONFIG: toml }, { home: dir });
  assert.equal(config.threads, 2);
  assert.equal(config.keepAliveMs, 3_600_000);
  assert.deepEqual(config.origins, ["https://a.example", "https://*.b.example"]);
  assert.equal(config.memoryBudgetBytes, 8 * 2 ** 30);
  assert.equal(config.hfToken, "hf_secret");
  assert.equal(sources.hfToken, "file");
});

test("config.toml in AI_SERVER_HOME is read when AI_SERVER_CONFIG names no file; a named file must exist", async () => {
  const home = await mkdtemp(path.join(dir, "home-"));
  assert.equal(resolveConfig({ AI_SERVER_HOME: home }).file, undefined, "no file: none read");
  await writeFile(path.join(home, "config.toml"), 'context_length = 8192\n');
  const found = resolveConfig({ AI_SERVER_HOME: home });
  assert.equal(found.file, path.join(home, "config.toml"));
  assert.equal(found.config.contextLength, 8192);
  assert.equal(loadConfig({}, { home }).contextLength, 8192, "found through the home the caller gives too");
  const missing = configError(() => loadConfig({ AI_SERVER_CONFIG: path.join(dir, "nowhere.toml") }, { home }));
  assert.match(missing.message, /nowhere\.toml: cannot be read/);
});

test("every problem of the file and the environment comes in one error", async () => {
  const json = await file("bad.json", JSON.stringify({ threads: "many", bogus: 1, host: "a:1", AI_SERVER_HOST: "b:2", preload: { a: 1 }, tls_cert: "/x.pem" }));
  const error = configError(() => loadConfig({ AI_SERVER_CONFIG: json, AI_SERVER_GPU: "tpu" }, { home: dir }));
  const problems = error.problems.join("\n");
  assert.match(problems, /AI_SERVER_THREADS="many" \(in .*bad\.json\)/);
  assert.match(problems, /unknown setting "bogus"/);
  assert.match(problems, /"AI_SERVER_HOST" and "host" are the same setting/);
  assert.match(problems, /preload: expected a string, a number, a boolean or an array of them/);
  assert.match(problems, /AI_SERVER_GPU="tpu"/);
  assert.match(problems, /AI_SERVER_TLS_CERT and AI_SERVER_TLS_KEY go together/);
  assert.equal(error.problems.length, 6);

  // A secret's wrong value is not echoed: it may hold a real password.
  const secret = configError(() => loadConfig({ AI_SERVER_REDIS_URL: "http://user:hunter2@cache:6379", AI_SERVER_ADMIN_KEY: "short-hunter2" }, { home: dir }));
  assert.match(secret.problems.join("\n"), /AI_SERVER_REDIS_URL=\(secret, not shown\): expected a redis:\/\/ or rediss:\/\/ URL/);
  assert.match(secret.problems.join("\n"), /AI_SERVER_ADMIN_KEY=\(secret, not shown\)/);
  assert.doesNotMatch(secret.message, /hunter2/);

  const broken = await file("broken.json", "{ not json");
  assert.match(configError(() => loadConfig({ AI_SERVER_CONFIG: broken }, { home: dir })).message, /broken\.json: not valid JSON/);
  const notObject = await file("list.json", "[1, 2]");
  assert.match(configError(() => loadConfig({ AI_SERVER_CONFIG: notObject }, { home: dir })).message, /expected an object of settings/);
});

test("ai-server config prints each effective value and its source, secrets masked", async () => {
  const json = await file("cli.json", JSON.stringify({ keep_alive: 90, admin_key: "file-admin-key-0123456789abcdefghijklmnop", body_limit: 2048 }));
  const run = promisify(execFile);
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(AI_SERVER_|HF_)/.test(key)));
  const cli = [process.execPath, "--import", "tsx", path.resolve("src/cli/main.ts"), "config"] as const;
  const options = { env: { ...env, AI_SERVER_HOME: dir, AI_SERVER_CONFIG: json, HF_TOKEN: "hf_env_token", AI_SERVER_THREADS: "1" } };
  const { stdout } = await run(cli[0], cli.slice(1), options);
  assert.match(stdout, new RegExp(`^config file: ${json.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"));
  const rows = new Map(
    stdout.split("\n").slice(3).filter(Boolean).map((line) => {
      const [env = "", source = "", ...value] = line.split(/\s+/);
      return [env, { source, value: value.join(" ") }];
    }),
  );
  assert.deepEqual(rows.get("AI_SERVER_KEEP_ALIVE"), { source: "file", value: "90s" });
  assert.deepEqual(rows.get("AI_SERVER_BODY_LIMIT"), { source: "file", value: "2048" });
  assert.deepEqual(rows.get("AI_SERVER_THREADS"), { source: "env", value: "1" });
  assert.deepEqual(rows.get("AI_SERVER_HOST"), { source: "default", value: "127.0.0.1:11434" });
  assert.deepEqual(rows.get("AI_SERVER_REQUEST_TIMEOUT"), { source: "default", value: "10m" });
  assert.deepEqual(rows.get("HF_TOKEN"), { source: "env", value: "********" });
  assert.deepEqual(rows.get("AI_SERVER_ADMIN_KEY"), { source: "file", value: "********" });
  assert.deepEqual(rows.get("AI_SERVER_TLS_KEY"), { source: "default", value: "(none)" });
  assert.doesNotMatch(stdout, /hf_env_token|file-admin-key/, "no secret is printed");

  const json2 = JSON.parse((await run(cli[0], [...cli.slice(1), "--json"], options)).stdout) as { file: string; settings: Array<{ env: string; value: string; source: string }> };
  assert.equal(json2.file, json);
  assert.deepEqual(json2.settings.find((s) => s.env === "HF_TOKEN"), { env: "HF_TOKEN", value: "********", source: "env" });

  await assert.rejects(run(cli[0], cli.slice(1), { env: { ...options.env, AI_SERVER_GPU: "tpu" } }), (error: Error & { code?: number; stderr?: string }) => {
    assert.equal(error.code, 2);
    assert.match(error.stderr ?? "", /AI_SERVER_GPU="tpu"/);
    return true;
  });
});
