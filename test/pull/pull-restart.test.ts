/**
 * A server killed (SIGKILL) in the middle of a pull, then started again on the same home, lists the job and finishes
 * it from where it stopped. The server runs as a process of its own, as deployed; the Hub and CDN are fakes on
 * loopback (test/helpers/fake-internet.ts) because this machine cannot reach the real ones.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { PULL_REPOS } from "../fixtures/pull-fixtures.js";
import { startFakeInternet, type FakeInternet } from "../helpers/fake-internet.js";
import { freePort } from "../helpers/free-port.js";
import { postJson } from "../helpers/start-server.js";
import { getJson, modelNames, waitFor } from "./pull-helpers.js";

const PART = 256 * 1024;
let internet: FakeInternet;
let home: string;

before(async () => {
  internet = await startFakeInternet();
  home = await mkdtemp(path.join(os.tmpdir(), "ai-server-restart-"));
});

after(async () => {
  await internet?.close();
  await rm(home, { recursive: true, force: true });
});

interface Served {
  baseUrl: string;
  child: ChildProcess;
}

/** `ai-server serve` from this checkout, in its own process, on a free port; resolves once it answers. */
async function serve(): Promise<Served> {
  const port = await freePort();
  const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", main, "serve"], {
    env: {
      ...process.env,
      AI_SERVER_HOME: home,
      AI_SERVER_HOST: `127.0.0.1:${port}`,
      AI_SERVER_ENGINE: "llama-cpp",
      AI_SERVER_THREADS: "1",
      AI_SERVER_LOG_LEVEL: "warn",
      AI_SERVER_PULL_CONNECTIONS: "1",
      AI_SERVER_PULL_PART_SIZE: String(PART),
      HF_ENDPOINT: internet.hubUrl,
      HF_HOME: path.join(home, "hf"),
      AI_SERVER_OLLAMA_REGISTRY: internet.registryUrl,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitFor("the server to answer", async () => (await fetch(`${baseUrl}/api/version`).catch(() => undefined))?.ok === true, 60_000);
  return { baseUrl, child };
}

test("a server killed mid-download lists the job after a restart and finishes it from where it stopped", async () => {
  const file = internet.hub.file(PULL_REPOS.multi, "multi-F16.gguf");
  assert.ok(file);
  internet.cdn.setFaults({ bytesPerSecond: 150_000 }, file.sha256);
  const downloaded = (): number => internet.cdn.requestsFor(file.sha256).filter((r) => r.range !== "bytes=0-524287").reduce((sum, r) => sum + r.bodyBytes, 0);

  const first = await serve();
  let id: string;
  try {
    const response = await postJson(first.baseUrl, "/api/jobs", { type: "pull", model: "owner/Multi-GGUF:F16" });
    assert.equal(response.status, 202);
    id = ((await response.json()) as { id: string }).id;
    // Some parts done (and saved: progress is written every second), then the process dies without warning.
    await waitFor("three parts downloaded", () => downloaded() >= 3 * PART, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
  } finally {
    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.once("exit", resolve));
  }
  const beforeRestart = downloaded();
  assert.ok(beforeRestart < file.size, "it was killed before the end");

  const second = await serve();
  try {
    internet.cdn.clearFaults();
    const listed = await getJson<{ jobs: Array<{ id: string; state: string }> }>(second.baseUrl, "/api/jobs");
    assert.ok(listed.body.jobs.some((job) => job.id === id), "the job survived the kill");
    await waitFor("the resumed job to succeed", async () => (await getJson<{ state: string }>(second.baseUrl, `/api/jobs/${id}`)).body.state === "succeeded", 30_000);
    assert.ok((await modelNames(second.baseUrl)).includes("owner/Multi-GGUF:F16"));
    const total = downloaded();
    // Resumed: what was saved before the kill is not fetched again (at most the parts in flight are).
    assert.ok(total < file.size + 2 * PART, `${total} bytes downloaded for a ${file.size}-byte file (${beforeRestart} before the kill)`);
  } finally {
    second.child.kill("SIGTERM");
    await new Promise((resolve) => second.child.once("exit", resolve));
  }
});
