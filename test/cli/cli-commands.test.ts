import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { ServerApi } from "../../src/cli/http-client.js";
import type { Job, PsModel } from "../../src/cli/wire.js";
import { ensureFixtures, JSON_REPLY, SCRIPTED_REPLY, type FixturePaths } from "../fixtures/models.js";
import { FakeCdn, fileDigest } from "../helpers/fake-cdn.js";
import { FakeHub } from "../helpers/fake-hub.js";
import { createModel, postJson, startServer, type TestServer } from "../helpers/start-server.js";

// The CLI's commands, run as child processes (as a user runs them) against the real server started here on port 0,
// with real inference on the fixture models (one thread). Pulls come from the fake Hugging Face Hub and its CDN on
// loopback: the internet is the one thing mocked.

const cliPath = path.resolve("src/cli/main.ts");

let fixtures: FixturePaths;
let cdn: FakeCdn;
let hub: FakeHub;
let server: TestServer;
let scratch: string;

const SYSTEM = "You are terse.\nAnswer in one line.\nNever apologise.";
const LICENSE = "MIT License\nCopyright (c) the authors\nPermission is hereby granted, free of charge";

before(async () => {
  fixtures = await ensureFixtures();
  scratch = await mkdtemp(path.join(os.tmpdir(), "ai-server-cli-commands-"));
  cdn = await FakeCdn.start();
  hub = await FakeHub.start({
    cdn,
    repos: [
      { id: "test/Chat-GGUF", files: [{ path: "chat-Q8_0.gguf", file: fixtures.chat }] },
      { id: "test/Json-GGUF", files: [{ path: "json-Q8_0.gguf", file: fixtures.json }] },
      { id: "test/Slow-GGUF", files: [{ path: "slow-F16.gguf", file: fixtures.tiny }] },
      { id: "test/Events-GGUF", files: [{ path: "events-Q8_0.gguf", file: fixtures.json }] },
      { id: "test/Weights", files: [{ path: "config.json", content: "{}" }, { path: "model.safetensors", content: "not really" }] },
      { id: "test/Weights-GGUF", baseModel: "test/Weights", files: [{ path: "weights-Q8_0.gguf", file: fixtures.chat }] },
    ],
  });
  server = await startServer({ config: upstream(path.join(scratch, "server-hf")) });
  await createModel(server.baseUrl, "chat", fixtures.chat, { system: SYSTEM, license: LICENSE, parameters: { temperature: 0.2, top_k: 20 } });
});

after(async () => {
  await server.close();
  await hub.close();
  await cdn.close();
  await rm(scratch, { recursive: true, force: true });
});

/** Where a server pulls from: the fake Hub (the Ollama registry too: names without a slash get its 404s). */
function upstream(hfHome: string): { hfEndpoint: string; ollamaRegistry: string; hfHome: string; hfToken: string } {
  return { hfEndpoint: hub.url, ollamaRegistry: hub.url, hfHome, hfToken: "" };
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface CliOptions {
  /** AI_SERVER_HOST: the test server by default; "127.0.0.1:1" is where nothing listens. */
  host?: string;
  /** AI_SERVER_HOME (for a server started in the CLI's process, and its history). */
  home?: string;
  /** Written to stdin, which is then closed (stdin is always a pipe here: not a terminal). */
  stdin?: string;
  /** Called with the child and the stdout so far on each piece of stdout. */
  onStdout?: (child: ReturnType<typeof spawn>, stdout: string) => void;
}

/** Runs the real CLI with a store under `home`, against the test server unless `host` says otherwise. */
function cli(args: string[], options: CliOptions = {}): Promise<Ran> {
  const home = options.home ?? path.join(scratch, "cli-home");
  const env = {
    ...process.env,
    AI_SERVER_HOST: options.host ?? new URL(server.baseUrl).host,
    AI_SERVER_HOME: home,
    AI_SERVER_ENGINE: "llama-cpp",
    AI_SERVER_THREADS: "1",
    HF_ENDPOINT: hub.url,
    AI_SERVER_OLLAMA_REGISTRY: hub.url,
    HF_HOME: path.join(home, "hf"),
    HF_TOKEN: "",
  };
  const child = spawn(process.execPath, ["--import", "tsx", cliPath, ...args], { env, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    options.onStdout?.(child, stdout);
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(options.stdin ?? "");
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const NO_SERVER = "127.0.0.1:1";

test("show prints the Model, Capabilities, Parameters, System and License sections", async () => {
  const { code, stdout, stderr } = await cli(["show", "chat"]);
  assert.equal(code, 0, stderr);
  assert.equal(
    stdout,
    [
      "  Model",
      "    architecture        llama",
      /^    parameters {10}\S+$/,
      "    context length      2048",
      /^    embedding length    \d+$/,
      "    quantization        F32",
      "",
      "  Capabilities",
      "    completion",
      "    tools",
      "",
      "  Parameters",
      "    temperature    0.2",
      "    top_k          20",
      "",
      "  System",
      "    You are terse.",
      "    Answer in one line.",
      "    ...",
      "",
      "  License",
      "    MIT License",
      "    Copyright (c) the authors",
      "    ...",
      "",
      "",
    ]
      .map((line, i) => (typeof line === "string" ? line : (stdout.split("\n")[i]?.match(line)?.[0] ?? `<no match for ${line}>`)))
      .join("\n"),
  );
});

test("show's flags print one field whole; --verbose adds every header key", async () => {
  assert.equal((await cli(["show", "chat", "--system"])).stdout, `${SYSTEM}\n`);
  assert.equal((await cli(["show", "chat", "--license"])).stdout, `${LICENSE}\n`);
  assert.match((await cli(["show", "chat", "--parameters"])).stdout, /^temperature +0\.2\ntop_k +20\n$/);
  assert.match((await cli(["show", "chat", "--template"])).stdout, /<\|im_start\|>/);
  const modelfile = (await cli(["show", "chat", "--modelfile"])).stdout;
  assert.match(modelfile, /^FROM .*sha256-[0-9a-f]{64}$/m);
  assert.match(modelfile, /^PARAMETER temperature 0\.2$/m);
  const verbose = (await cli(["show", "chat", "--verbose"])).stdout;
  assert.match(verbose, /\n  Metadata\n[\s\S]*\n    general\.architecture +llama\n/);
  assert.match(verbose, /\n    tokenizer\.ggml\.tokens +\[…\]\n/);
});

test("show of an unknown model prints the server's error and exits 1", async () => {
  const { code, stderr } = await cli(["show", "no-such-model"]);
  assert.equal(code, 1);
  assert.equal(stderr, 'Error: model "no-such-model" not found, try pulling it first\n');
});

test("run NAME PROMPT prints the model's answer, exactly", async () => {
  const { code, stdout, stderr } = await cli(["run", "chat", "Hi", "there"]);
  assert.equal(code, 0, stderr);
  assert.equal(stdout, `${SCRIPTED_REPLY}\n`);
  assert.equal(stderr, "");
});

test("run reads the prompt from stdin when it is not a terminal; --verbose adds ollama's statistics on stderr", async () => {
  const { code, stdout, stderr } = await cli(["run", "chat", "--verbose"], { stdin: "Tell me a story\n" });
  assert.equal(code, 0, stderr);
  assert.equal(stdout, `${SCRIPTED_REPLY}\n`);
  assert.match(stderr, /^total duration: +\S+\nload duration: +\S+\nprompt eval count: +\d+ token\(s\)\n[\s\S]*\neval rate: +[\d.]+ tokens\/s\n$/);
});

test("ps lists the model after a request, with its processor; stop unloads it; stopping it again fails", async () => {
  const loaded = await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "Hi", stream: false });
  assert.equal(loaded.status, 200);
  const { models } = (await (await fetch(`${server.baseUrl}/api/tags`)).json()) as { models: Array<{ name: string; digest: string }> };
  const id = models.find((m) => m.name === "chat:latest")?.digest.slice(0, 12);

  const ps = await cli(["ps"]);
  assert.equal(ps.code, 0, ps.stderr);
  const [header, ...rows] = ps.stdout.trimEnd().split("\n");
  assert.match(header ?? "", /^NAME +ID +SIZE +PROCESSOR +CONTEXT +UNTIL$/);
  const row = rows.find((r) => r.startsWith("chat:latest "));
  assert.ok(row, ps.stdout);
  assert.match(row, new RegExp(`^chat:latest +${id} +[\\d.]+ [KMG]iB +100% CPU +\\d+ +\\d+ minutes from now$`));

  const stopped = await cli(["stop", "chat"]);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.equal(stopped.stdout, "stopped chat:latest\n");
  const running = (await (await fetch(`${server.baseUrl}/api/ps`)).json()) as { models: PsModel[] };
  assert.equal(running.models.find((m) => m.name === "chat:latest"), undefined);
  assert.doesNotMatch((await cli(["ps"])).stdout, /chat:latest/);

  const again = await cli(["stop", "chat"]);
  assert.equal(again.code, 1);
  assert.equal(again.stderr, 'Error: model "chat" is not running\n');
});

test("jobs lists no jobs before any pull", async () => {
  const { code, stdout, stderr } = await cli(["jobs"]);
  assert.equal(code, 0, stderr);
  assert.equal(stdout, "ID   MODEL   STATE   PROGRESS   SPEED   ETA   STATUS/ERROR\n");
  assert.equal((await cli(["jobs", "--json"])).stdout, "[]\n");
});

test("pull shows the choice and each file's progress; run answers with the pulled model; jobs lists and removes the pull", async () => {
  const pulled = await cli(["pull", "hf.co/test/Chat-GGUF"]);
  assert.equal(pulled.code, 0, pulled.stderr);
  const lines = pulled.stdout.split("\n");
  assert.equal(lines[0], "pulling manifest");
  assert.ok(lines.includes("file: test/Chat-GGUF/chat-Q8_0.gguf (Q8_0, 823 KiB)"), pulled.stdout);
  assert.ok(lines.some((line) => line.startsWith("why: ")), pulled.stdout);
  assert.ok(lines.some((line) => /^pulling (chat-Q8_0\.gguf|[0-9a-f]{12}): 100% \(823 KiB of 823 KiB\)$/.test(line)), pulled.stdout);
  assert.deepEqual(lines.slice(-2), ["success", ""]);

  const answered = await cli(["run", "hf.co/test/Chat-GGUF", "Hi"]);
  assert.equal(answered.code, 0, answered.stderr);
  assert.equal(answered.stdout, `${SCRIPTED_REPLY}\n`);

  const listed = await cli(["jobs"]);
  const row = listed.stdout.split("\n").find((line) => line.includes("hf.co/test/Chat-GGUF"));
  assert.match(row ?? listed.stdout, /^[0-9a-z-]+ +hf\.co\/test\/Chat-GGUF:latest +succeeded +100% 823 KiB\/823 KiB +- +- +success$/);
  const jobs = JSON.parse((await cli(["jobs", "--json"])).stdout) as Job[];
  const job = jobs.find((j) => j.model === "hf.co/test/Chat-GGUF:latest");
  assert.equal(job?.choice?.file, "chat-Q8_0.gguf");
  const removed = await cli(["jobs", "cancel", job.id]);
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal(removed.stdout, `removed job ${job.id} (hf.co/test/Chat-GGUF:latest, succeeded)\n`);
  assert.doesNotMatch((await cli(["jobs", "--all"])).stdout, /Chat-GGUF/);
});

test("run of a missing model pulls it first (progress on stderr), then answers", async () => {
  const { code, stdout, stderr } = await cli(["run", "hf.co/test/Json-GGUF:Q8_0", "Give JSON"]);
  assert.equal(code, 0, stderr);
  assert.equal(stdout, `${JSON_REPLY}\n`);
  assert.match(stderr, /^model "hf\.co\/test\/Json-GGUF:Q8_0" is not here; pulling it\npulling manifest\n/);
  assert.match(stderr, /\nsuccess\n$/);
});

test("a name that cannot be found: pull and run print the server's error and exit 1", async () => {
  const pulled = await cli(["pull", "test/no-such-repo"]);
  assert.equal(pulled.code, 1);
  assert.match(pulled.stderr, /^Error: repository "test\/no-such-repo" was not found on the Hugging Face Hub/);
  const ran = await cli(["run", "test/no-such-repo", "Hi"]);
  assert.equal(ran.code, 1);
  assert.match(ran.stderr, /^model "test\/no-such-repo" is not here; pulling it\nError: repository "test\/no-such-repo" was not found/);
});

test("a repo without GGUF: pull uses a GGUF of it and says which; --exact refuses", async () => {
  const exact = await cli(["pull", "test/Weights", "--exact"]);
  assert.equal(exact.code, 1);
  assert.match(exact.stderr, /^Error: .*test\/Weights/);
  const pulled = await cli(["pull", "test/Weights"]);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.match(pulled.stdout, /^test\/Weights has no GGUF file: using test\/Weights-GGUF, a GGUF quantization of it$/m);
});

/**
 * Makes the download of the Slow-GGUF file stall for minutes past its first 600 KiB, until `clearFaults`; the pull's
 * 512 KiB header probe is not slowed.
 */
async function stallSlowFile(): Promise<void> {
  const slow = await fileDigest(fixtures.tiny);
  cdn.setFaults({ stall: { afterBytes: 600 << 10, ms: 300_000, times: Infinity } }, slow.sha256);
}

test("Ctrl-C during a pull leaves the job running in the server, and says so", { timeout: 120_000 }, async () => {
  await stallSlowFile();
  try {
    let interrupted = false;
    const { code, stdout } = await cli(["pull", "hf.co/test/Slow-GGUF"], {
      onStdout: (child, text) => {
        if (!interrupted && /^pulling \S+: 0% /m.test(text)) {
          interrupted = true;
          child.kill("SIGINT");
        }
      },
    });
    assert.equal(code, 130);
    const id = /\ninterrupted: the pull continues in the server as job (\S+) \(`ai-server jobs` shows it\)\n$/.exec(stdout)?.[1];
    assert.ok(id, stdout);
    const job = (await (await fetch(`${server.baseUrl}/api/jobs/${id}`)).json()) as Job;
    assert.equal(job.state, "running");
    const cancelled = await cli(["jobs", "cancel", id]);
    assert.equal(cancelled.stdout, `cancelled job ${id} (hf.co/test/Slow-GGUF:latest)\n`);
  } finally {
    cdn.clearFaults();
  }
});

test("the CLI's API client follows a job's server-sent events to its final state", async () => {
  const api = new ServerApi(server.baseUrl);
  const started = await api.json<Job>("POST", "/api/jobs", { type: "pull", model: "hf.co/test/Events-GGUF" });
  const events: Array<{ event: string; data: Job }> = [];
  for await (const event of api.events<Job>(`/api/jobs/${started.id}/events`)) events.push(event);
  assert.ok(events.length > 0);
  assert.deepEqual(new Set(events.map((e) => e.event)), new Set(["job"]));
  assert.ok(events.every((e) => e.data.id === started.id));
  assert.equal(events.at(-1)?.data.state, "succeeded");
  assert.equal(events.at(-1)?.data.status, "success");
});

test("with no server: ps and jobs say so and exit 0, stop exits 1", async () => {
  for (const command of [["ps"], ["jobs"], ["stop", "chat"]]) {
    const { code, stdout } = await cli(command, { host: NO_SERVER });
    assert.equal(stdout, `no server is running at http://${NO_SERVER}\n`);
    assert.equal(code, command[0] === "stop" ? 1 : 0);
  }
});

test("with no server, pull runs one in its own process over the same home: errors and models as from a server", async () => {
  const home = path.join(scratch, "in-process-home");
  const notice = `no server at http://${NO_SERVER}; running one in this process\n`;
  const missing = await cli(["pull", "test/no-such-repo"], { host: NO_SERVER, home });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, new RegExp(`^${escape(notice)}Error: repository "test/no-such-repo" was not found`));

  const pulled = await cli(["pull", "hf.co/test/Chat-GGUF:Q8_0"], { host: NO_SERVER, home });
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.equal(pulled.stderr, notice);
  assert.match(pulled.stdout, /\nsuccess\n$/);
  assert.match((await cli(["list"], { host: NO_SERVER, home })).stdout, /^hf\.co\/test\/Chat-GGUF:Q8_0 /m, "the model is in the store");
  const shown = await cli(["show", "hf.co/test/Chat-GGUF:Q8_0"], { host: NO_SERVER, home });
  assert.match(shown.stdout, /^ {4}quantization {8}F32$/m);
  const answered = await cli(["run", "hf.co/test/Chat-GGUF:Q8_0", "Hi"], { host: NO_SERVER, home });
  assert.equal(answered.stdout, `${SCRIPTED_REPLY}\n`);
  assert.equal(answered.stderr, notice);
  await rm(home, { recursive: true, force: true });
});

test("Ctrl-C during a pull in the CLI's own server stops it, and says so; the next pull finishes it", { timeout: 120_000 }, async () => {
  const home = path.join(scratch, "interrupted-home");
  await stallSlowFile();
  let interrupted = false;
  const first = await cli(["pull", "hf.co/test/Slow-GGUF"], {
    host: NO_SERVER,
    home,
    onStdout: (child, text) => {
      if (!interrupted && /^pulling \S+: 0% /m.test(text)) {
        interrupted = true;
        child.kill("SIGINT");
      }
    },
  });
  cdn.clearFaults();
  assert.equal(first.code, 130);
  assert.match(first.stdout, /\ninterrupted: the download stops now; it resumes from where it stopped at the next `ai-server pull hf\.co\/test\/Slow-GGUF` or server start\n$/);
  const second = await cli(["pull", "hf.co/test/Slow-GGUF"], { host: NO_SERVER, home });
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /\nsuccess\n$/);
  await rm(home, { recursive: true, force: true });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
