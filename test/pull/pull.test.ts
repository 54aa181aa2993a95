/**
 * Pulling models by name, end to end: the real server (real downloader, store, scheduler and node-llama-cpp) against
 * a fake Hugging Face Hub, Ollama registry and CDN on loopback (test/helpers/fake-internet.ts), which stand in for
 * the internet this machine cannot reach. Every pulled model is then used for real inference.
 */
import assert from "node:assert/strict";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Ollama } from "ollama";
import { dataPaths } from "../../src/store/open-store.js";
import { HUB_TOKENS, PULL_REPOS, REGISTRY_SYSTEM, REGISTRY_TEMPLATE } from "../fixtures/pull-fixtures.js";
import { SCRIPTED_REPLY } from "../fixtures/models.js";
import { startFakeInternet, type FakeInternet } from "../helpers/fake-internet.js";
import { postJson } from "../helpers/start-server.js";
import { quantizeTool } from "../quantize/quantize-tool.js";
import { filesIn, getJson, modelNames, pull, startPullServer, waitFor, type PullServer } from "./pull-helpers.js";

let internet: FakeInternet;
let server: PullServer;
let ollama: Ollama;
const hi = [{ role: "user", content: "Hi" }];
/** The Range of the request that reads a file's GGUF header to size it before the choice (not a download). */
const PROBE_RANGE = "bytes=0-524287";

before(async () => {
  internet = await startFakeInternet();
  server = await startPullServer(internet);
  ollama = new Ollama({ host: server.baseUrl });
});

after(async () => {
  await server?.close();
  await internet?.close();
});

function sha256Of(repo: string, file: string): string {
  const found = internet.hub.file(repo, file);
  assert.ok(found, `${repo} has ${file}`);
  return found.sha256;
}

describe("pull then use", () => {
  test("ollama.pull of a Hub repo streams Ollama's progress, then ollama.chat answers with the model", async () => {
    const name = "hf.co/owner/Scripted-GGUF";
    const statuses: Array<{ status: string; digest?: string; total?: number; completed?: number }> = [];
    for await (const part of await ollama.pull({ model: name, stream: true })) statuses.push(part);
    assert.equal(statuses[0]?.status, "pulling manifest");
    const sha = sha256Of(PULL_REPOS.scripted, "scripted-Q8_0.gguf");
    const progress = statuses.filter((s) => s.status === `pulling ${sha.slice(0, 12)}`);
    assert.ok(progress.length >= 1, "per-file progress lines");
    assert.equal(progress[progress.length - 1]?.completed, progress[0]?.total);
    assert.equal(progress[0]?.digest, `sha256:${sha}`);
    assert.deepEqual(statuses.slice(-3).map((s) => s.status), ["verifying sha256 digest", "writing manifest", "success"]);

    const reply = await ollama.chat({ model: name, messages: hi, options: { temperature: 0 } });
    assert.equal(reply.message.content, SCRIPTED_REPLY);
    const listed = await ollama.list();
    assert.ok(listed.models.some((m) => m.name === "hf.co/owner/Scripted-GGUF:latest"));
  });

  test("the first line carries the job and the choice with its reason; the job records them", async () => {
    const { status, lines } = await pull(server.baseUrl, "owner/Multi-GGUF");
    assert.equal(status, 200);
    const first = lines[0] as { status: string; job: string; choice: { file: string; quantization: string; reason: string; alternatives: unknown[] } };
    assert.equal(first.status, "pulling manifest");
    assert.equal(first.choice.file, "multi-Q4_K_M.gguf");
    assert.match(first.choice.reason, /Q4_K_M, the default: needs about .* within the budget of/);
    assert.equal(first.choice.alternatives.length, 4, "mmproj and imatrix files are never candidates");
    const job = await getJson<{ state: string; choice: { file: string }; files: Array<{ state: string; source: string }> }>(server.baseUrl, `/api/jobs/${first.job}`);
    assert.equal(job.body.state, "succeeded");
    assert.equal(job.body.choice.file, "multi-Q4_K_M.gguf");
    assert.deepEqual(job.body.files.map((f) => [f.state, f.source]), [["done", "download"]]);
  });

  test("a split GGUF is pulled whole and loads as one model; deleting it removes every part", async () => {
    const { lines } = await pull(server.baseUrl, "hf.co/owner/Split-GGUF:Q8_0");
    assert.equal(lines[lines.length - 1]?.status, "success");
    const choice = (lines[0] as { choice: { files: string[] } }).choice;
    assert.equal(choice.files.length, 3);
    const reply = await ollama.chat({ model: "hf.co/owner/Split-GGUF:Q8_0", messages: hi, options: { temperature: 0 } });
    assert.equal(reply.message.content, SCRIPTED_REPLY);
    const blobs = dataPaths(server.home).blobs;
    const parts = [1, 2, 3].map((i) => `sha256-${sha256Of(PULL_REPOS.split, `Q8_0/split-Q8_0-0000${i}-of-00003.gguf`)}`);
    for (const part of parts) assert.ok((await filesIn(blobs)).includes(part));
    await ollama.delete({ model: "hf.co/owner/Split-GGUF:Q8_0" });
    for (const part of parts) assert.ok(!(await filesIn(blobs)).includes(part), "every part is deleted with the model");
  });

  test("an Ollama registry model brings its template, parameters, system prompt and license", async () => {
    for await (const part of await ollama.pull({ model: "scripted", stream: true })) void part;
    const show = await ollama.show({ model: "scripted" });
    assert.equal(show.template, REGISTRY_TEMPLATE);
    assert.equal(show.system, REGISTRY_SYSTEM);
    assert.match(show.parameters, /temperature\s+0.2/);
    assert.match(show.license, /\S/);
    const reply = await ollama.generate({ model: "scripted", prompt: "Hi", options: { temperature: 0 } });
    assert.equal(reply.response, SCRIPTED_REPLY);
    assert.ok((await modelNames(server.baseUrl)).includes("scripted:latest"));
  });

  test("stream:false answers one success object", async () => {
    const response = await postJson(server.baseUrl, "/api/pull", { name: "scripted:small", stream: false });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: "success" });
  });
});

describe("choosing the file", () => {
  test("a repository without GGUF files resolves to its most downloaded GGUF quantization, unless substitution is refused", async () => {
    const { lines } = await pull(server.baseUrl, "base/Safetensors-Model");
    const choice = (lines[0] as { choice: { repo: string; substituted_from: string; reason: string } }).choice;
    assert.equal(choice.repo, PULL_REPOS.safetensorsGguf);
    assert.equal(choice.substituted_from, PULL_REPOS.safetensors);
    assert.match(choice.reason, /a GGUF quantization of base\/Safetensors-Model/);
    const reply = await ollama.chat({ model: "base/Safetensors-Model", messages: hi, options: { temperature: 0 } });
    assert.equal(reply.message.content, SCRIPTED_REPLY);

    const refused = await pull(server.baseUrl, "base/Safetensors-Model:exact", { substitute: false });
    assert.equal(refused.status, 409);
    assert.match(refused.error ?? "", /has no GGUF file \(it contains: .*model\.safetensors.*\).*quant\/Safetensors-Model-GGUF/);

    const none = await pull(server.baseUrl, PULL_REPOS.unquantized);
    assert.equal(none.status, 404);
    assert.match(none.error ?? "", /no GGUF file and no GGUF quantization of it was found.*it contains: .*model\.safetensors/);
  });

  test("the auto choice follows the memory budget", async () => {
    // What each file needs, as the server estimates it from the file's own header (a tag measures that file).
    const need: Record<string, number> = {};
    for (const quantization of ["Q2_K", "Q4_K_M", "Q8_0", "F16"]) {
      const { lines } = await pull(server.baseUrl, `owner/Multi-GGUF:${quantization}`);
      need[quantization] = (lines[0] as { choice: { estimate: { ram: number } } }).choice.estimate.ram;
    }
    const [q2 = 0, q4 = 0, q8 = 0, f16 = 0] = [need.Q2_K, need.Q4_K_M, need.Q8_0, need.F16];
    assert.ok(q2 < q4 && q4 < q8 && q8 < f16, `estimates grow with precision: ${JSON.stringify(need)}`);
    assert.equal(((await pull(server.baseUrl, "owner/Multi-GGUF:auto")).lines[0] as { choice: { quantization: string } }).choice.quantization, "F16");

    const tight = await startPullServer(internet, { memoryBudgetBytes: Math.round((q4 + q8) / 2) });
    try {
      const chosen = async (name: string) => ((await pull(tight.baseUrl, name)).lines[0] as { choice: { quantization: string } }).choice.quantization;
      assert.equal(await chosen("owner/Multi-GGUF:auto"), "Q4_K_M", "the most precise that fits");
      assert.equal(await chosen("owner/Multi-GGUF"), "Q4_K_M", "the default, which fits");
      const over = await pull(tight.baseUrl, "owner/Multi-GGUF:F16");
      assert.match(String(over.lines[1]?.status), /^warning: F16 needs about .* more than the memory budget/);
      assert.equal(over.lines[over.lines.length - 1]?.status, "success", "a named quantization downloads even when it does not fit");
    } finally {
      await tight.close();
    }
    const tighter = await startPullServer(internet, { memoryBudgetBytes: Math.round((q2 + q4) / 2) });
    try {
      const { lines: small } = await pull(tighter.baseUrl, "owner/Multi-GGUF");
      assert.match((small[0] as { choice: { reason: string } }).choice.reason, /^Q2_K, the most precise file that fits .*\(Q4_K_M would need/);
    } finally {
      await tighter.close();
    }
    const none = await startPullServer(internet, { memoryBudgetBytes: Math.round(q2 / 2) });
    try {
      const refused = await pull(none.baseUrl, "owner/Multi-GGUF:auto");
      assert.equal(refused.status, 507);
      assert.match(refused.error ?? "", /no GGUF file of "owner\/Multi-GGUF" fits the memory budget.*smallest, Q2_K/);
    } finally {
      await none.close();
    }
  });

  const tool = quantizeTool();
  test("a quantization the repository lacks is made here from its F16 file", { skip: tool.skip }, async () => {
    const { lines } = await pull(server.baseUrl, "owner/F16-Only-GGUF:Q8_0");
    const choice = (lines[0] as { choice: { quantize_to: string; quantization: string; reason: string } }).choice;
    assert.equal(choice.quantization, "F16");
    assert.equal(choice.quantize_to, "Q8_0");
    assert.ok(lines.some((l) => String(l.status).startsWith("quantizing F16 model to Q8_0") && Number(l.total) > 0));
    assert.equal(lines[lines.length - 1]?.status, "success");
    const show = await ollama.show({ model: "owner/F16-Only-GGUF:Q8_0" });
    assert.equal(show.details.quantization_level, "Q8_0");
    const f16 = `sha256-${sha256Of(PULL_REPOS.f16Only, "f16-only-F16.gguf")}`;
    assert.ok(!(await filesIn(dataPaths(server.home).blobs)).includes(f16), "the F16 source is not kept");
    const reply = await ollama.chat({ model: "owner/F16-Only-GGUF:Q8_0", messages: hi, options: { temperature: 0 } });
    assert.equal(reply.message.content, SCRIPTED_REPLY);
  });

  test("bad names, missing repositories, tags and registry models fail before streaming, with the reason", async () => {
    const cases: Array<[string, number, RegExp]> = [
      ["a/b/c/d", 400, /invalid model name/],
      ["hf.co/owner/No-Such-Repo", 404, /repository "owner\/No-Such-Repo" was not found on the Hugging Face Hub/],
      ["owner/Scripted-GGUF:Q5_K_M", 404, /"Q5_K_M" matches no GGUF file of "owner\/Scripted-GGUF": it has Q8_0/],
      ["no-such-model:7b", 404, /model "no-such-model:7b" was not found in the Ollama registry/],
      ["private/Private-GGUF", 404, /was not found on the Hugging Face Hub \(if it is private, give the server a token/],
    ];
    for (const [name, status, message] of cases) {
      const result = await pull(server.baseUrl, name);
      assert.equal(result.status, status, name);
      assert.match(result.error ?? "", message, name);
    }
    assert.equal((await postJson(server.baseUrl, "/api/jobs", { type: "pull", model: "a/b/c/d" })).status, 400);
  });
});

describe("access", () => {
  test("a gated repository says what to do without a token, with a token not granted, and works with a granted one (token file)", async () => {
    const anonymous = await pull(server.baseUrl, PULL_REPOS.gated);
    assert.equal(anonymous.status, 403);
    assert.match(anonymous.error ?? "", /gated repository: accept its terms at .*gated\/Gated-GGUF and give the server a token/);
    const bob = await startPullServer(internet, { hfToken: HUB_TOKENS.notGranted });
    try {
      const refused = await pull(bob.baseUrl, PULL_REPOS.gated);
      assert.equal(refused.status, 403);
      assert.match(refused.error ?? "", /has not been granted access: accept its terms at/);
    } finally {
      await bob.close();
    }
    const alice = await startPullServer(internet);
    try {
      await writeFile(path.join(alice.hfHome, "token"), `${HUB_TOKENS.granted}\n`); // what huggingface-cli login writes
      const { lines } = await pull(alice.baseUrl, PULL_REPOS.gated);
      assert.equal(lines[lines.length - 1]?.status, "success");
      assert.ok(internet.hub.requests.some((r) => r.authorization === `Bearer ${HUB_TOKENS.granted}`), "the Hub got the token");
      assert.ok(internet.cdn.requests.every((r) => r.authorization === undefined), "the CDN never did");
    } finally {
      await alice.close();
    }
  });

  test("the Hub's rate limit is waited out", async () => {
    internet.hub.rateLimit({ times: 2, retryAfterSeconds: 1 });
    try {
      const started = Date.now();
      const { lines } = await pull(server.baseUrl, "owner/Multi-GGUF:Q2_K");
      assert.equal(lines[lines.length - 1]?.status, "success");
      assert.ok(Date.now() - started >= 1000, "it waited as Retry-After said");
    } finally {
      internet.hub.clearRateLimit();
    }
  });
});

describe("transfer", () => {
  test("a connection cut mid-file resumes where it stopped", async () => {
    const sha = sha256Of(PULL_REPOS.multi, "multi-Q8_0.gguf");
    const size = internet.hub.file(PULL_REPOS.multi, "multi-Q8_0.gguf")?.size ?? 0;
    // One part for the whole file on one connection; the cut lands past the header probe's 512 KiB.
    internet.cdn.setFaults({ cut: { afterBytes: 600_000, times: 1 } }, sha);
    try {
      const other = await startPullServer(internet, { pullConnections: 1, pullPartSize: 64 * 1024 * 1024 });
      try {
        const before = internet.cdn.requestsFor(sha).length;
        const { lines } = await pull(other.baseUrl, "owner/Multi-GGUF:Q8_0");
        assert.equal(lines[lines.length - 1]?.status, "success");
        // The cut answer, then one that starts where the bytes that reached the server before the cut end (the CDN
        // wrote 600 000 bytes, but a cut connection drops what was still in flight) and goes to the end.
        const requests = internet.cdn.requestsFor(sha).slice(before).filter((r) => r.range !== PROBE_RANGE);
        const described = requests.map((r) => `${r.range}: ${r.bodyBytes}`).join("; ");
        assert.equal(requests.length, 2, described);
        const resumedAt = Number(/^bytes=(\d+)-/.exec(requests[1]?.range ?? "")?.[1]);
        assert.ok(resumedAt > 0 && resumedAt <= 600_000, `resumed from where the cut left it, not from 0 (${described})`);
        assert.equal(requests[1]?.bodyBytes, size - resumedAt, described);
      } finally {
        await other.close();
      }
    } finally {
      internet.cdn.clearFaults();
    }
  });

  test("corrupted bytes are detected: nothing is installed and no partial data stays", async () => {
    const sha = sha256Of(PULL_REPOS.multi, "multi-F16.gguf");
    const fresh = await startPullServer(internet);
    internet.cdn.setFaults({ corrupt: { offset: 900_000, times: Infinity } }, sha);
    try {
      const result = await pull(fresh.baseUrl, "owner/Multi-GGUF:F16");
      const last = result.lines[result.lines.length - 1];
      assert.match(String(last?.error), /sha256 mismatch/);
      assert.ok(!(await modelNames(fresh.baseUrl)).includes("owner/Multi-GGUF:F16"));
      assert.ok(!(await filesIn(dataPaths(fresh.home).blobs)).includes(`sha256-${sha}`));
      assert.deepEqual((await filesIn(dataPaths(fresh.home).downloads)).filter((f) => f.includes(sha)), []);
      const jobs = await getJson<{ jobs: Array<{ model: string; error?: { code: string } }> }>(fresh.baseUrl, "/api/jobs?state=failed");
      assert.equal(jobs.body.jobs.find((j) => j.model === "owner/Multi-GGUF:F16")?.error?.code, "download_corrupt");
    } finally {
      internet.cdn.clearFaults();
      await fresh.close();
    }
  });

  test("two concurrent pulls of one model share one job and download once", async () => {
    const sha = sha256Of(PULL_REPOS.multi, "multi-Q8_0.gguf");
    const size = internet.hub.file(PULL_REPOS.multi, "multi-Q8_0.gguf")?.size ?? 0;
    const fresh = await startPullServer(internet);
    internet.cdn.setFaults({ bytesPerSecond: 2_000_000 }, sha);
    try {
      const before = internet.cdn.requestsFor(sha).length;
      const [a, b] = await Promise.all([pull(fresh.baseUrl, "owner/Multi-GGUF:Q8_0"), pull(fresh.baseUrl, "owner/Multi-GGUF:Q8_0")]);
      assert.equal(a.lines[a.lines.length - 1]?.status, "success");
      assert.equal(b.lines[b.lines.length - 1]?.status, "success");
      assert.equal(a.lines[0]?.job, b.lines[0]?.job);
      const served = internet.cdn.requestsFor(sha).slice(before).filter((r) => r.range !== PROBE_RANGE).reduce((sum, r) => sum + r.bodyBytes, 0);
      assert.equal(served, size, "the file was downloaded once");
    } finally {
      internet.cdn.clearFaults();
      await fresh.close();
    }
  });

  test("a file already in the local Hugging Face cache is imported: nothing is downloaded", async () => {
    const sha = sha256Of(PULL_REPOS.split, "split-Q4_K_M.gguf");
    const cached = await startPullServer(internet);
    try {
      const blobs = path.join(cached.hfHome, "hub", "models--owner--Split-GGUF", "blobs");
      await mkdir(blobs, { recursive: true });
      await copyFile(internet.fixtures.scripted, path.join(blobs, sha)); // split-Q4_K_M.gguf is the scripted model
      const before = internet.cdn.requestsFor(sha).length;
      const { lines } = await pull(cached.baseUrl, "owner/Split-GGUF:Q4_K_M");
      assert.equal(lines[lines.length - 1]?.status, "success");
      assert.equal(internet.cdn.requestsFor(sha).length, before, "no byte of it was fetched");
      const job = await getJson<{ files: Array<{ source: string }> }>(cached.baseUrl, `/api/jobs/${String(lines[0]?.job)}`);
      assert.equal(job.body.files[0]?.source, "hf-cache");
      const reply = await new Ollama({ host: cached.baseUrl }).chat({ model: "owner/Split-GGUF:Q4_K_M", messages: hi, options: { temperature: 0 } });
      assert.equal(reply.message.content, SCRIPTED_REPLY);
    } finally {
      await cached.close();
    }
  });
});

describe("jobs", () => {
  test("POST /api/jobs answers 202 at once; its events stream to the end; the list filters by state", async () => {
    const response = await postJson(server.baseUrl, "/api/jobs", { type: "pull", model: "owner/Multi-GGUF:Q2_K" });
    assert.equal(response.status, 202);
    const job = (await response.json()) as { id: string; state: string };
    assert.match(job.id, /^[0-9a-f]{12}$/);
    const events = await fetch(`${server.baseUrl}/api/jobs/${job.id}/events`);
    assert.match(events.headers.get("content-type") ?? "", /text\/event-stream/);
    const text = await events.text();
    const states = [...text.matchAll(/^data: (.*)$/gm)].map((m) => (JSON.parse(m[1] ?? "{}") as { state: string }).state);
    assert.equal(states[states.length - 1], "succeeded");
    assert.match(text, /^event: job$/m);
    const listed = await getJson<{ jobs: Array<{ id: string }> }>(server.baseUrl, "/api/jobs?state=succeeded");
    assert.ok(listed.body.jobs.some((j) => j.id === job.id));
    assert.ok(!(await getJson<{ jobs: Array<{ id: string }> }>(server.baseUrl, "/api/jobs?state=running")).body.jobs.some((j) => j.id === job.id));
    assert.equal((await getJson(server.baseUrl, "/api/jobs?state=bogus")).status, 400);
  });

  test("DELETE cancels a running pull and removes its partial data and the job", async () => {
    const sha = sha256Of(PULL_REPOS.multi, "multi-F16.gguf");
    const fresh = await startPullServer(internet);
    internet.cdn.setFaults({ bytesPerSecond: 100_000 }, sha);
    try {
      const created = (await (await postJson(fresh.baseUrl, "/api/jobs", { type: "pull", model: "owner/Multi-GGUF:F16" })).json()) as { id: string };
      const downloads = dataPaths(fresh.home).downloads;
      await waitFor("some bytes on disk", async () => (await filesIn(downloads)).some((f) => f.includes(sha)));
      const cancelled = await fetch(`${fresh.baseUrl}/api/jobs/${created.id}`, { method: "DELETE" });
      assert.equal(cancelled.status, 200);
      assert.equal(((await cancelled.json()) as { state: string }).state, "cancelled");
      assert.equal((await getJson(fresh.baseUrl, `/api/jobs/${created.id}`)).status, 404);
      assert.deepEqual((await filesIn(downloads)).filter((f) => f.includes(sha)), []);
      assert.ok(!(await modelNames(fresh.baseUrl)).includes("owner/Multi-GGUF:F16"));
    } finally {
      internet.cdn.clearFaults();
      await fresh.close();
    }
  });

  test("a client that disconnects from /api/pull does not stop the job", async () => {
    const sha = sha256Of(PULL_REPOS.multi, "multi-F16.gguf");
    const fresh = await startPullServer(internet);
    internet.cdn.setFaults({ bytesPerSecond: 1_000_000 }, sha);
    try {
      const controller = new AbortController();
      const response = await postJson(fresh.baseUrl, "/api/pull", { model: "owner/Multi-GGUF:F16" }, { signal: controller.signal });
      const reader = response.body?.getReader();
      const first = JSON.parse(new TextDecoder().decode((await reader?.read())?.value).split("\n")[0] ?? "{}") as { job: string };
      controller.abort();
      await waitFor("the job to finish", async () => (await getJson<{ state: string }>(fresh.baseUrl, `/api/jobs/${first.job}`)).body.state === "succeeded");
      assert.ok((await modelNames(fresh.baseUrl)).includes("owner/Multi-GGUF:F16"));
    } finally {
      internet.cdn.clearFaults();
      await fresh.close();
    }
  });
});
