/**
 * A pull claimed by a replica that is killed (SIGKILL, mid-download) is taken over and finished by the other replica
 * on the same PostgreSQL, once the dead replica's claim lapses (AI_SERVER_JOB_LEASE, short here). The killed replica
 * is `ai-server serve` in a process of its own; the other is in this process; the Hub and CDN are fakes on loopback.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { PULL_REPOS } from "../fixtures/pull-fixtures.js";
import { startFakeInternet, type FakeInternet } from "../helpers/fake-internet.js";
import { postgresSkipReason } from "../helpers/postgres-server.js";
import { startServeProcess, type ServeProcess } from "../helpers/serve-process.js";
import { postJson, sha256File, startServer, type TestServer } from "../helpers/start-server.js";
import { TestDatabases } from "../helpers/test-databases.js";
import { getJson, PULL_TEST_SETTINGS, waitFor } from "../pull/pull-helpers.js";

const skip = postgresSkipReason() ?? false;
const LEASE = "2s";
const databases = new TestDatabases();
let internet: FakeInternet;
let databaseUrl: string;
let home: string;

before(async () => {
  if (skip) return;
  internet = await startFakeInternet();
  databaseUrl = (await databases.target("postgres")).url ?? "";
  home = await mkdtemp(path.join(os.tmpdir(), "ai-server-takeover-"));
});

after(async () => {
  await internet?.close();
  await databases.close();
  if (home) await rm(home, { recursive: true, force: true });
});

/** `ai-server serve` in its own process, on the shared database and the fake internet. */
function serveProcess(): Promise<ServeProcess> {
  return startServeProcess({
    AI_SERVER_HOME: home,
    AI_SERVER_DATABASE_URL: databaseUrl,
    AI_SERVER_JOB_LEASE: LEASE,
    AI_SERVER_ENGINE: "llama-cpp",
    AI_SERVER_THREADS: "1",
    AI_SERVER_PULL_CONNECTIONS: String(PULL_TEST_SETTINGS.pullConnections),
    AI_SERVER_PULL_PART_SIZE: String(PULL_TEST_SETTINGS.pullPartSize),
    HF_ENDPOINT: internet.hubUrl,
    HF_HOME: path.join(home, "hf"),
    AI_SERVER_OLLAMA_REGISTRY: internet.registryUrl,
  });
}

test("a pull whose replica is killed mid-download is taken over by the other replica and finished there", { skip }, async () => {
  const file = internet.hub.file(PULL_REPOS.multi, "multi-F16.gguf");
  assert.ok(file);
  internet.cdn.setFaults({ bytesPerSecond: 150_000 }, file.sha256);
  const other: TestServer = await startServer({ config: { databaseUrl, jobLeaseMs: LEASE, ...internet.config, ...PULL_TEST_SETTINGS } });
  const doomed = await serveProcess();
  try {
    const response = await postJson(doomed.baseUrl, "/api/jobs", { type: "pull", model: "owner/Multi-GGUF:F16" });
    assert.equal(response.status, 202);
    const { id } = (await response.json()) as { id: string };
    const job = async (): Promise<{ state: string; files: Array<{ completed: number }> }> => (await getJson<{ state: string; files: Array<{ completed: number }> }>(other.baseUrl, `/api/jobs/${id}`)).body;
    await waitFor("progress of the doomed replica, seen by the other", async () => (await job()).files?.some((f) => f.completed > 0) === true, 30_000);
    assert.equal((await getJson<{ jobs: unknown[] }>(other.baseUrl, "/api/jobs?state=running")).body.jobs.length, 1, "running, on one replica");

    await doomed.kill();
    internet.cdn.clearFaults();
    await waitFor("the other replica to take the job over and finish it", async () => (await job()).state === "succeeded", 60_000);
    const names = (await getJson<{ models: Array<{ name: string }> }>(other.baseUrl, "/api/tags")).body.models.map((m) => m.name);
    assert.ok(names.includes("owner/Multi-GGUF:F16"));
    const record = other.app.services.store.require("owner/Multi-GGUF:F16");
    assert.equal(await sha256File(other.app.services.store.blobs.pathOf(record.modelDigest)), `sha256:${file.sha256}`, "the weights are on the replica that finished it, verified");
  } finally {
    await doomed.kill();
    await other.close();
  }
});
