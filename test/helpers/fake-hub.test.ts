/**
 * The loopback stand-ins for the internet (fake CDN, Hugging Face Hub, Ollama registry), exercised with plain fetch:
 * every route, error and fault switch the pull tests rely on, so that a pull test failing means the pull code is
 * wrong, not its fake. Also the pull fixtures they serve: the split GGUF is written as gguf-split writes it and
 * llama.cpp (node-llama-cpp, 1 thread) loads it from its first part and answers the scripted reply.
 * Run: node --import tsx --test test/helpers/fake-hub.test.ts
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { getLlama, LlamaChat, type Llama } from "node-llama-cpp";
import { readGguf } from "../../src/gguf/read-gguf.js";
import { gguf } from "../fixtures/gguf-writer.js";
import { SCRIPTED_REPLY } from "../fixtures/models.js";
import { HUB_TOKENS, PULL_REPOS, REGISTRY_PARAMS, REGISTRY_TEMPLATE } from "../fixtures/pull-fixtures.js";
import { readGgufLayout, splitGguf, writeSplitGguf } from "../fixtures/split-gguf.js";
import { gitBlobOid, lfsPointer } from "./fake-hub-repo.js";
import { startFakeInternet, type FakeInternet } from "./fake-internet.js";
import { MANIFEST_MEDIA_TYPE, OLLAMA_MEDIA_TYPES, type OllamaManifest } from "./fake-registry.js";

let internet: FakeInternet;
let tmp: string;
let blobFile: string;
let blobBytes: Buffer;
let blobSha: string;
let llama: Llama | undefined;

const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

before(async () => {
  internet = await startFakeInternet();
  tmp = await mkdtemp(path.join(os.tmpdir(), "fake-internet-test-"));
  blobFile = path.join(tmp, "blob.bin");
  blobBytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919 + (i >> 8)) & 0xff));
  await writeFile(blobFile, blobBytes);
  blobSha = (await internet.cdn.addFile(blobFile)).sha256;
});

after(async () => {
  await llama?.dispose();
  await internet?.close();
  await rm(tmp, { recursive: true, force: true });
});

/** Reads a body to its end or to the error that ends it (a cut connection), keeping what arrived. */
async function readAll(response: Response): Promise<{ bytes: Buffer; error?: unknown }> {
  const chunks: Buffer[] = [];
  const reader = response.body!.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { bytes: Buffer.concat(chunks) };
      chunks.push(Buffer.from(value));
    }
  } catch (error) {
    return { bytes: Buffer.concat(chunks), error };
  }
}

function blobUrl(): string {
  return internet.cdn.signedUrl(blobSha);
}

// ---------------------------------------------------------------------------------------------
// CDN
// ---------------------------------------------------------------------------------------------

test("cdn: whole body, ranges (a-b, a-, -n), 416, HEAD; ETag and Accept-Ranges; bytes served are counted", async () => {
  const cdn = internet.cdn;
  const before = cdn.bytesServed(blobSha);
  const whole = await fetch(blobUrl());
  assert.equal(whole.status, 200);
  assert.equal(whole.headers.get("accept-ranges"), "bytes");
  assert.equal(whole.headers.get("etag"), `"${blobSha}"`);
  assert.equal(whole.headers.get("content-length"), String(blobBytes.length));
  assert.equal(sha256(Buffer.from(await whole.arrayBuffer())), blobSha);

  for (const [range, start, end] of [["bytes=1000-1999", 1000, 1999], ["bytes=299990-", 299_990, 299_999], ["bytes=-10", 299_990, 299_999], ["bytes=5-999999", 5, 299_999]] as const) {
    const part = await fetch(blobUrl(), { headers: { range } });
    assert.equal(part.status, 206, range);
    assert.equal(part.headers.get("content-range"), `bytes ${start}-${end}/${blobBytes.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), blobBytes.subarray(start, end + 1), range);
  }
  const unsatisfiable = await fetch(blobUrl(), { headers: { range: "bytes=300000-" } });
  assert.equal(unsatisfiable.status, 416);
  assert.equal(unsatisfiable.headers.get("content-range"), `bytes */${blobBytes.length}`);
  await unsatisfiable.arrayBuffer();

  const head = await fetch(blobUrl(), { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), String(blobBytes.length));
  assert.equal(cdn.bytesServed(blobSha) - before, blobBytes.length + 1000 + 10 + 10 + 299_995);
  const last = cdn.requestsFor(blobSha).at(-1)!;
  assert.equal(last.method, "HEAD");
  assert.equal(last.status, 200);
  assert.equal(cdn.requestsFor(blobSha).at(-3)?.range, "bytes=5-999999");
});

test("cdn: only signed URLs: a missing or wrong signature 403, expired URLs 403 'Request has expired', an Authorization header 400", async () => {
  const cdn = internet.cdn;
  const unsigned = await fetch(`${cdn.url}/blobs/${blobSha}`);
  assert.equal(unsigned.status, 403);
  const forged = new URL(blobUrl());
  forged.searchParams.set("sig", "0".repeat(32));
  assert.equal((await fetch(forged)).status, 403);
  const unknown = await fetch(cdn.signedUrl("0".repeat(64)));
  assert.equal(unknown.status, 404);
  assert.match(await unknown.text(), /NoSuchKey/);

  const withToken = await fetch(blobUrl(), { headers: bearer("hf_secret") });
  assert.equal(withToken.status, 400);
  assert.match(await withToken.text(), /Only one auth mechanism allowed/);
  assert.equal(cdn.requests.at(-1)?.authorization, "Bearer hf_secret", "the log shows the header that arrived");
  cdn.rejectAuthorization = false;
  try {
    assert.equal((await fetch(blobUrl(), { method: "HEAD", headers: bearer("hf_secret") })).status, 200);
  } finally {
    cdn.rejectAuthorization = true;
  }

  const issued = blobUrl();
  assert.equal((await fetch(issued, { method: "HEAD" })).status, 200);
  cdn.expireIssuedUrls();
  const expired = await fetch(issued);
  assert.equal(expired.status, 403);
  assert.match(await expired.text(), /Request has expired/);
  assert.equal((await fetch(blobUrl(), { method: "HEAD" })).status, 200, "a URL signed afterwards works");
  cdn.urlLifetimeSeconds = -10;
  try {
    const stale = await fetch(blobUrl());
    assert.equal(stale.status, 403);
    assert.match(await stale.text(), /Request has expired/);
  } finally {
    cdn.urlLifetimeSeconds = 3600;
  }
});

test("cdn: noRange answers 200 with the whole body and no Accept-Ranges", async (t) => {
  t.after(() => internet.cdn.clearFaults());
  internet.cdn.setFaults({ noRange: true }, blobSha);
  const response = await fetch(blobUrl(), { headers: { range: "bytes=100-199" } });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("accept-ranges"), null);
  assert.equal(response.headers.get("content-range"), null);
  assert.equal(sha256(Buffer.from(await response.arrayBuffer())), blobSha);
});

test("cdn: cut after N bytes, once (the next answer is whole) or always; answers shorter than N are not cut", async (t) => {
  t.after(() => internet.cdn.clearFaults());
  internet.cdn.setFaults({ cut: { afterBytes: 70_000 } }, blobSha);
  const short = await fetch(blobUrl(), { headers: { range: "bytes=0-999" } });
  assert.equal((await readAll(short)).bytes.length, 1000);
  const cut = await readAll(await fetch(blobUrl()));
  assert.ok(cut.error, "the body ends in an error");
  assert.deepEqual(cut.bytes, blobBytes.subarray(0, 70_000));
  assert.equal(internet.cdn.requestsFor(blobSha).at(-1)?.completed, false);
  const resumed = await fetch(blobUrl(), { headers: { range: "bytes=70000-" } });
  assert.equal(resumed.status, 206);
  assert.deepEqual(Buffer.from(await resumed.arrayBuffer()), blobBytes.subarray(70_000));

  internet.cdn.setFaults({ cut: { afterBytes: 0, times: Infinity } }, blobSha);
  for (let i = 0; i < 2; i++) {
    const response = await fetch(blobUrl());
    assert.equal(response.status, 200, "the headers arrive");
    const body = await readAll(response);
    assert.ok(body.error);
    assert.equal(body.bytes.length, 0);
  }
});

test("cdn: corrupt flips the byte at an offset of the blob, once or always, only in answers that carry it", async (t) => {
  t.after(() => internet.cdn.clearFaults());
  internet.cdn.setFaults({ corrupt: { offset: 123_456 } }, blobSha);
  const elsewhere = await fetch(blobUrl(), { headers: { range: "bytes=0-99" } });
  assert.deepEqual(Buffer.from(await elsewhere.arrayBuffer()), blobBytes.subarray(0, 100));
  const corrupted = Buffer.from(await (await fetch(blobUrl())).arrayBuffer());
  assert.equal(corrupted.length, blobBytes.length);
  assert.notEqual(sha256(corrupted), blobSha);
  assert.equal(corrupted[123_456], blobBytes[123_456]! ^ 0xff);
  corrupted[123_456] = blobBytes[123_456]!;
  assert.deepEqual(corrupted, blobBytes, "only that byte differs");
  assert.equal(sha256(Buffer.from(await (await fetch(blobUrl())).arrayBuffer())), blobSha, "once: the next answer is right");

  internet.cdn.setFaults({ corrupt: { offset: 123_456, times: Infinity } }, blobSha);
  for (let i = 0; i < 2; i++) {
    const part = Buffer.from(await (await fetch(blobUrl(), { headers: { range: "bytes=123450-123460" } })).arrayBuffer());
    assert.equal(part[6], blobBytes[123_456]! ^ 0xff);
  }
});

test("cdn: 429 with Retry-After, then 500, the first K times; a blob's own faults win over the global ones", async (t) => {
  t.after(() => internet.cdn.clearFaults());
  internet.cdn.setFaults({ tooManyRequests: { times: 2, retryAfterSeconds: 7 }, serverError: { times: 1 } }, blobSha);
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const response = await fetch(blobUrl(), { method: i % 2 === 0 ? "GET" : "HEAD" });
    statuses.push(response.status);
    if (response.status === 429) assert.equal(response.headers.get("retry-after"), "7");
    await response.arrayBuffer();
  }
  assert.deepEqual(statuses, [429, 429, 500, 200]);

  internet.cdn.setFaults({ serverError: { times: 5 } });
  const other = internet.cdn.addContent("another blob");
  assert.equal((await fetch(internet.cdn.signedUrl(other.sha256))).status, 500, "global faults reach every blob");
  internet.cdn.setFaults({}, blobSha);
  assert.equal((await fetch(blobUrl(), { method: "HEAD" })).status, 200, "a blob with faults of its own ignores the global ones");
  internet.cdn.clearFaults();
  assert.equal(await (await fetch(internet.cdn.signedUrl(other.sha256))).text(), "another blob");
});

test("cdn: a stall sends nothing for its time after N bytes, then the rest", async (t) => {
  t.after(() => internet.cdn.clearFaults());
  internet.cdn.setFaults({ stall: { afterBytes: 50_000, ms: 1500 } }, blobSha);
  const reader = (await fetch(blobUrl())).body!.getReader();
  const chunks: Buffer[] = [];
  let received = 0;
  while (received < 50_000) {
    const { value } = await reader.read();
    chunks.push(Buffer.from(value!));
    received += value!.length;
  }
  assert.equal(received, 50_000);
  const next = reader.read();
  const quiet = await Promise.race([next.then(() => "data"), new Promise((resolve) => setTimeout(() => resolve("quiet"), 300))]);
  assert.equal(quiet, "quiet", "nothing arrives during the stall");
  for (let result = await next; !result.done; result = await reader.read()) chunks.push(Buffer.from(result.value));
  assert.equal(sha256(Buffer.concat(chunks)), blobSha);
});

test("cdn: a rate limit paces each connection at its bytes per second", async (t) => {
  t.after(() => internet.cdn.clearFaults());
  internet.cdn.setFaults({ bytesPerSecond: 100_000 }, blobSha);
  const started = performance.now();
  const body = Buffer.from(await (await fetch(blobUrl(), { headers: { range: "bytes=0-79999" } })).arrayBuffer());
  const seconds = (performance.now() - started) / 1000;
  assert.deepEqual(body, blobBytes.subarray(0, 80_000));
  // 16 writes of 5000 bytes, the first at once: the last cannot leave before 0.75 s (a floor the fake guarantees).
  assert.ok(seconds >= 0.7, `80 kB at 100 kB/s took ${seconds} s`);
});

// ---------------------------------------------------------------------------------------------
// Hugging Face Hub
// ---------------------------------------------------------------------------------------------

interface TreeEntry {
  type: string;
  oid: string;
  size: number;
  path: string;
  lfs?: { oid: string; size: number; pointerSize: number };
}

test("hub: repo info, by main and by commit sha; siblings with ?blobs=true; the gguf summary; an unknown revision is RevisionNotFound", async () => {
  const hub = internet.hub;
  const response = await fetch(`${hub.url}/api/models/${PULL_REPOS.safetensorsGguf}`);
  assert.equal(response.status, 200);
  const info = (await response.json()) as Record<string, unknown>;
  const repo = hub.repo(PULL_REPOS.safetensorsGguf)!;
  assert.equal(info.id, PULL_REPOS.safetensorsGguf);
  assert.equal(info.modelId, PULL_REPOS.safetensorsGguf);
  assert.match(String(info._id), /^[0-9a-f]{24}$/);
  assert.match(String(info.sha), /^[0-9a-f]{40}$/);
  assert.equal(info.sha, repo.sha);
  assert.equal(info.private, false);
  assert.equal(info.gated, false);
  assert.equal(info.disabled, false);
  assert.equal(info.downloads, 5000);
  assert.equal(info.library_name, "gguf");
  assert.deepEqual(info.cardData, { base_model: PULL_REPOS.safetensors });
  assert.ok((info.tags as string[]).includes(`base_model:quantized:${PULL_REPOS.safetensors}`));
  assert.deepEqual(info.siblings, [{ rfilename: ".gitattributes" }, { rfilename: "README.md" }, { rfilename: "Safetensors-Model-Q4_K_M.gguf" }]);
  const summary = info.gguf as Record<string, unknown>;
  assert.equal(summary.architecture, "llama");
  assert.equal(summary.context_length, 2048);
  assert.equal(summary.eos_token, "<|im_end|>");
  const header = await readGguf(internet.fixtures.scripted);
  assert.equal(summary.total, header.tensors.reduce((n, t) => n + Number(t.elements), 0));

  const bySha = (await (await fetch(`${hub.url}/api/models/${PULL_REPOS.safetensorsGguf}/revision/${repo.sha}?blobs=true`)).json()) as { siblings: unknown[] };
  const scriptedSha = sha256(await readFile(internet.fixtures.scripted));
  assert.deepEqual(bySha.siblings.at(-1), {
    rfilename: "Safetensors-Model-Q4_K_M.gguf",
    blobId: gitBlobOid(Buffer.from(lfsPointer(scriptedSha, header.fileSize))),
    size: header.fileSize,
    lfs: { sha256: scriptedSha, size: header.fileSize, pointerSize: lfsPointer(scriptedSha, header.fileSize).length },
  });

  const badRevision = await fetch(`${hub.url}/api/models/${PULL_REPOS.scripted}/revision/v9`);
  assert.equal(badRevision.status, 404);
  assert.equal(badRevision.headers.get("x-error-code"), "RevisionNotFound");
  const safetensorsInfo = (await (await fetch(`${hub.url}/api/models/${PULL_REPOS.safetensors}`)).json()) as Record<string, unknown>;
  assert.equal(safetensorsInfo.gguf, undefined);
  assert.equal(safetensorsInfo.library_name, "transformers");
});

test("hub: the tree (recursive=true and =1, one folder, top level): sizes, LFS sha256 of the bytes, git oids, folders; RevisionNotFound", async () => {
  const hub = internet.hub;
  const url = `${hub.url}/api/models/${PULL_REPOS.split}/tree/main`;
  const tree = (await (await fetch(`${url}?recursive=true`)).json()) as TreeEntry[];
  assert.deepEqual((await (await fetch(`${url}?recursive=1`)).json()) as TreeEntry[], tree);
  assert.deepEqual(tree.map((e) => [e.type, e.path]), [
    ["file", ".gitattributes"],
    ["directory", "Q8_0"],
    ["file", "Q8_0/split-Q8_0-00001-of-00003.gguf"],
    ["file", "Q8_0/split-Q8_0-00002-of-00003.gguf"],
    ["file", "Q8_0/split-Q8_0-00003-of-00003.gguf"],
    ["file", "README.md"],
    ["file", "split-Q4_K_M.gguf"],
  ]);
  for (const [i, part] of internet.fixtures.splitParts.entries()) {
    const bytes = await readFile(part);
    const entry = tree[2 + i]!;
    assert.equal(entry.size, bytes.length);
    assert.deepEqual(entry.lfs, { oid: sha256(bytes), size: bytes.length, pointerSize: lfsPointer(sha256(bytes), bytes.length).length });
    assert.equal(entry.oid, gitBlobOid(Buffer.from(lfsPointer(sha256(bytes), bytes.length))));
  }
  const readme = tree.find((e) => e.path === "README.md")!;
  assert.equal(readme.lfs, undefined, "small text files are plain git files");
  assert.equal(readme.oid, gitBlobOid(Buffer.from("# Split-GGUF\n\nA generated test model.\n")));
  assert.equal(tree[1]!.size, 0);

  const top = (await (await fetch(url)).json()) as TreeEntry[];
  assert.deepEqual(top.map((e) => e.path), [".gitattributes", "Q8_0", "README.md", "split-Q4_K_M.gguf"]);
  const folder = (await (await fetch(`${url}/Q8_0`)).json()) as TreeEntry[];
  assert.deepEqual(folder, tree.slice(2, 5));
  const missingFolder = await fetch(`${url}/Q2_K`);
  assert.equal(missingFolder.status, 404);
  assert.equal(missingFolder.headers.get("x-error-code"), "EntryNotFound");
  const bySha = await fetch(`${hub.url}/api/models/${PULL_REPOS.split}/tree/${hub.repo(PULL_REPOS.split)!.sha}?recursive=true`);
  assert.deepEqual(await bySha.json(), tree);
  const badRevision = await fetch(`${hub.url}/api/models/${PULL_REPOS.split}/tree/dev?recursive=true`);
  assert.equal(badRevision.status, 404);
  assert.equal(badRevision.headers.get("x-error-code"), "RevisionNotFound");
});

test("hub: the tree pages by Link rel=next when longer than a page", async (t) => {
  const hub = internet.hub;
  const url = `${hub.url}/api/models/${PULL_REPOS.multi}/tree/main?recursive=true`;
  const whole = (await (await fetch(url)).json()) as TreeEntry[];
  assert.equal(whole.length, 8);
  hub.pageSize = 3;
  t.after(() => (hub.pageSize = 1000));
  const pages: TreeEntry[][] = [];
  for (let next: string | undefined = url; next !== undefined; ) {
    const response: Response = await fetch(next);
    pages.push((await response.json()) as TreeEntry[]);
    next = /<([^>]+)>;\s*rel="next"/.exec(response.headers.get("link") ?? "")?.[1];
    if (next) assert.ok(next.startsWith(`${hub.url}/api/models/${PULL_REPOS.multi}/tree/main?`) && next.includes("recursive=true"));
  }
  assert.deepEqual(pages.map((p) => p.length), [3, 3, 2]);
  assert.deepEqual(pages.flat(), whole);
});

test("hub: the model search finds the GGUF quantizations of a base model (case-sensitive), most downloaded first, limited; search= and author=", async () => {
  const hub = internet.hub;
  const search = async (query: string, headers: Record<string, string> = {}): Promise<Array<Record<string, unknown>>> => {
    const response = await fetch(`${hub.url}/api/models?${query}`, { headers });
    assert.equal(response.status, 200);
    return (await response.json()) as Array<Record<string, unknown>>;
  };
  const quantized = `filter=${encodeURIComponent(`base_model:quantized:${PULL_REPOS.safetensors}`)}&filter=gguf&sort=downloads&direction=-1`;
  const found = await search(`${quantized}&limit=10`);
  assert.deepEqual(found.map((m) => [m.id, m.downloads]), [[PULL_REPOS.safetensorsGguf, 5000], [PULL_REPOS.safetensorsGgufLessDownloaded, 40]]);
  assert.deepEqual(Object.keys(found[0]!).sort(), ["_id", "createdAt", "downloads", "id", "library_name", "likes", "modelId", "pipeline_tag", "private", "tags", "trendingScore"]);
  assert.equal(found[0]!.library_name, "gguf");
  assert.deepEqual((await search(`${quantized}&limit=1`)).map((m) => m.id), [PULL_REPOS.safetensorsGguf]);
  assert.deepEqual((await search(quantized.replace("direction=-1", "direction=1"))).map((m) => m.id), [PULL_REPOS.safetensorsGgufLessDownloaded, PULL_REPOS.safetensorsGguf]);
  assert.deepEqual(await search(`filter=base_model:quantized:${PULL_REPOS.unquantized}&filter=gguf`), []);
  assert.deepEqual((await search("filter=base_model:quantized:base/safetensors-model")).map((m) => m.id), [PULL_REPOS.otherCaseGguf]);
  assert.deepEqual((await search("search=safetensors-model-gguf&sort=downloads")).map((m) => m.id), [PULL_REPOS.otherCaseGguf, PULL_REPOS.safetensorsGguf, PULL_REPOS.safetensorsGgufLessDownloaded]);
  assert.deepEqual((await search("author=owner&filter=gguf&sort=downloads")).map((m) => m.id).slice(0, 1), [PULL_REPOS.scripted]);
  assert.ok(!(await search("search=Private")).some((m) => m.id === PULL_REPOS.private), "private repos are hidden");
  assert.deepEqual((await search("search=Private", bearer(HUB_TOKENS.privateOwner))).map((m) => m.id), [PULL_REPOS.private]);
});

test("hub: resolve of an LFS file: 302 to the CDN (another origin) with X-Repo-Commit, X-Linked-Etag, X-Linked-Size; the bytes verify; the token stays on the hub", async () => {
  const hub = internet.hub;
  const repo = hub.repo(PULL_REPOS.scripted)!;
  const file = hub.file(PULL_REPOS.scripted, "scripted-Q8_0.gguf")!;
  for (const method of ["GET", "HEAD"]) {
    const response = await fetch(`${hub.url}/${PULL_REPOS.scripted}/resolve/main/scripted-Q8_0.gguf`, { method, redirect: "manual" });
    assert.equal(response.status, 302, method);
    const location = new URL(response.headers.get("location")!);
    assert.equal(location.origin, internet.cdn.url);
    assert.notEqual(location.origin, hub.url);
    assert.equal(response.headers.get("x-repo-commit"), repo.sha);
    assert.equal(response.headers.get("x-linked-etag"), `"${file.sha256}"`);
    assert.equal(response.headers.get("x-linked-size"), String(file.size));
    assert.equal(response.headers.get("etag"), `"${file.sha256}"`);
    await response.arrayBuffer();
  }
  const cdnRequests = internet.cdn.requests.length;
  const followed = await fetch(`${hub.url}/${PULL_REPOS.scripted}/resolve/${repo.sha}/scripted-Q8_0.gguf`, { headers: bearer(HUB_TOKENS.notGranted) });
  assert.equal(followed.status, 200);
  assert.equal(sha256(Buffer.from(await followed.arrayBuffer())), sha256(await readFile(internet.fixtures.scripted)));
  assert.equal(hub.requests.at(-1)?.authorization, `Bearer ${HUB_TOKENS.notGranted}`, "the hub got the token");
  const fetched = internet.cdn.requests.slice(cdnRequests);
  assert.equal(fetched.length, 1);
  assert.equal(fetched[0]!.authorization, undefined, "fetch drops Authorization on a redirect to another origin");

  const ranged = await fetch(`${hub.url}/${PULL_REPOS.scripted}/resolve/main/scripted-Q8_0.gguf`, { headers: { range: "bytes=0-3" } });
  assert.equal(ranged.status, 206);
  assert.equal(await ranged.text(), "GGUF");
});

test("hub: resolve of a small file: 307 to a relative /api/resolve-cache path that serves it (with Range); a missing file is EntryNotFound", async () => {
  const hub = internet.hub;
  const repo = hub.repo(PULL_REPOS.scripted)!;
  const config = hub.file(PULL_REPOS.scripted, "config.json")!;
  const response = await fetch(`${hub.url}/${PULL_REPOS.scripted}/resolve/main/config.json`, { redirect: "manual" });
  assert.equal(response.status, 307);
  const location = response.headers.get("location")!;
  assert.ok(location.startsWith(`/api/resolve-cache/models/${PULL_REPOS.scripted}/${repo.sha}/config.json?`), location);
  assert.equal(response.headers.get("x-repo-commit"), repo.sha);
  assert.equal(response.headers.get("etag"), `"${config.gitOid}"`);
  assert.equal(response.headers.get("x-linked-etag"), null);
  await response.arrayBuffer();

  const followed = await fetch(`${hub.url}/${PULL_REPOS.scripted}/resolve/main/config.json`);
  assert.equal(followed.status, 200);
  const text = await followed.text();
  assert.equal(JSON.parse(text).model_type, "llama");
  assert.equal(config.gitOid, gitBlobOid(Buffer.from(text)));
  const part = await fetch(new URL(location, hub.url), { headers: { range: "bytes=0-0" } });
  assert.equal(part.status, 206);
  assert.equal(await part.text(), "{");

  const missing = await fetch(`${hub.url}/${PULL_REPOS.scripted}/resolve/main/nope.gguf`);
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("x-error-code"), "EntryNotFound");
  assert.deepEqual(await missing.json(), { error: "Entry not found" });
  const badRevision = await fetch(`${hub.url}/${PULL_REPOS.scripted}/resolve/v2/config.json`);
  assert.equal(badRevision.headers.get("x-error-code"), "RevisionNotFound");
});

test("hub: a missing repo is RepoNotFound: 401 to anonymous callers (404 with the switch off), 404 with a token; an invalid token is 401", async (t) => {
  const hub = internet.hub;
  const urls = [`${hub.url}/api/models/nobody/Missing-GGUF`, `${hub.url}/api/models/nobody/Missing-GGUF/tree/main`, `${hub.url}/nobody/Missing-GGUF/resolve/main/x.gguf`];
  for (const url of urls) {
    const anonymous = await fetch(url);
    assert.equal(anonymous.status, 401, url);
    assert.equal(anonymous.headers.get("x-error-code"), "RepoNotFound");
    assert.deepEqual(await anonymous.json(), { error: "Invalid username or password." });
    const authenticated = await fetch(url, { headers: bearer(HUB_TOKENS.notGranted) });
    assert.equal(authenticated.status, 404);
    assert.equal(authenticated.headers.get("x-error-code"), "RepoNotFound");
    assert.deepEqual(await authenticated.json(), { error: "Repository not found" });
  }
  hub.anonymousRepoNotFound401 = false;
  t.after(() => (hub.anonymousRepoNotFound401 = true));
  assert.equal((await fetch(urls[0]!)).status, 404);

  const invalid = await fetch(`${hub.url}/api/models/${PULL_REPOS.scripted}`, { headers: bearer("hf_not_a_token") });
  assert.equal(invalid.status, 401);
  assert.deepEqual(await invalid.json(), { error: "Invalid credentials in Authorization header" });
  assert.equal((await fetch(`${hub.url}/${PULL_REPOS.scripted}/resolve/main/config.json`, { headers: bearer("hf_not_a_token") })).status, 401);
});

test("hub: a private repo is RepoNotFound (401 anonymous, 404 to other users) except to its owner", async () => {
  const hub = internet.hub;
  const info = `${hub.url}/api/models/${PULL_REPOS.private}`;
  const file = `${hub.url}/${PULL_REPOS.private}/resolve/main/scripted-Q4_K_M.gguf`;
  for (const url of [info, file]) {
    const anonymous = await fetch(url, { redirect: "manual" });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get("x-error-code"), "RepoNotFound");
    const other = await fetch(url, { headers: bearer(HUB_TOKENS.granted), redirect: "manual" });
    assert.equal(other.status, 404);
    assert.equal(other.headers.get("x-error-code"), "RepoNotFound");
  }
  const owner = (await (await fetch(info, { headers: bearer(HUB_TOKENS.privateOwner) })).json()) as Record<string, unknown>;
  assert.equal(owner.private, true);
  assert.equal((await fetch(file, { headers: bearer(HUB_TOKENS.privateOwner), redirect: "manual" })).status, 302);
});

test("hub: a gated repo: info and tree readable by all; files 401 GatedRepo to anonymous callers, 403 GatedRepo to users not granted, 302 when granted", async () => {
  const hub = internet.hub;
  const info = (await (await fetch(`${hub.url}/api/models/${PULL_REPOS.gated}`)).json()) as Record<string, unknown>;
  assert.equal(info.gated, "manual");
  assert.equal((await fetch(`${hub.url}/api/models/${PULL_REPOS.gated}/tree/main?recursive=true`)).status, 200);
  for (const name of ["scripted-Q4_K_M.gguf", "README.md"]) {
    const url = `${hub.url}/${PULL_REPOS.gated}/resolve/main/${name}`;
    const anonymous = await fetch(url, { redirect: "manual" });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get("x-error-code"), "GatedRepo");
    assert.deepEqual(await anonymous.json(), {
      error: `Access to model ${PULL_REPOS.gated} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
    });
    const notGranted = await fetch(url, { headers: bearer(HUB_TOKENS.notGranted), redirect: "manual" });
    assert.equal(notGranted.status, 403);
    assert.equal(notGranted.headers.get("x-error-code"), "GatedRepo");
    assert.deepEqual(await notGranted.json(), {
      error: `Access to model ${PULL_REPOS.gated} is restricted and you are not in the authorized list. Visit https://huggingface.co/${PULL_REPOS.gated} to ask for access.`,
    });
    const granted = await fetch(url, { headers: bearer(HUB_TOKENS.granted), redirect: "manual" });
    assert.equal(granted.status, name.endsWith(".gguf") ? 302 : 307);
    await granted.arrayBuffer();
  }
});

test("hub: a rate limit answers 429 with Retry-After and RateLimit headers to the first K calls of its bucket", async (t) => {
  const hub = internet.hub;
  t.after(() => hub.clearRateLimit());
  hub.rateLimit({ times: 2, retryAfterSeconds: 3 });
  const info = `${hub.url}/api/models/${PULL_REPOS.scripted}`;
  const file = `${hub.url}/${PULL_REPOS.scripted}/resolve/main/config.json`;
  const first = await fetch(info);
  assert.equal(first.status, 429);
  assert.equal(first.headers.get("retry-after"), "3");
  assert.equal(first.headers.get("ratelimit"), '"api";r=0;t=3');
  assert.match(first.headers.get("ratelimit-policy") ?? "", /^"fixed window";"api";q=\d+;w=300$/);
  assert.equal((await fetch(file)).status, 200, "downloads are another bucket");
  assert.equal((await fetch(`${hub.url}/api/models?filter=gguf`)).status, 429);
  assert.equal((await fetch(info)).status, 200);

  hub.rateLimit({ times: 1, retryAfterSeconds: 1, bucket: "resolvers" });
  const limited = await fetch(file);
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get("ratelimit"), '"resolvers";r=0;t=1');
  assert.equal((await fetch(file)).status, 200);
});

test("hub: whoami-v2 names the token's user; 401 without a valid token", async () => {
  const hub = internet.hub;
  const me = (await (await fetch(`${hub.url}/api/whoami-v2`, { headers: bearer(HUB_TOKENS.granted) })).json()) as Record<string, unknown>;
  assert.equal(me.name, "alice");
  assert.equal((await fetch(`${hub.url}/api/whoami-v2`)).status, 401);
});

// ---------------------------------------------------------------------------------------------
// Ollama registry
// ---------------------------------------------------------------------------------------------

test("registry: manifest (schema 2, config and layers), config blob, small layers answered, the model layer 307 to the CDN; 404s", async () => {
  const registry = internet.registry;
  const accept = { accept: MANIFEST_MEDIA_TYPE };
  const response = await fetch(`${registry.url}/v2/library/scripted/manifests/latest`, { headers: accept });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), MANIFEST_MEDIA_TYPE);
  const text = await response.text();
  assert.equal(response.headers.get("docker-content-digest"), `sha256:${sha256(Buffer.from(text))}`);
  assert.equal(registry.requests.at(-1)?.headers.accept, MANIFEST_MEDIA_TYPE);
  const manifest = JSON.parse(text) as OllamaManifest;
  assert.equal(manifest.schemaVersion, 2);
  assert.equal(manifest.mediaType, MANIFEST_MEDIA_TYPE);
  assert.equal(manifest.config.mediaType, "application/vnd.docker.container.image.v1+json");
  assert.deepEqual(manifest.layers.map((l) => l.mediaType), [OLLAMA_MEDIA_TYPES.model, OLLAMA_MEDIA_TYPES.template, OLLAMA_MEDIA_TYPES.params, OLLAMA_MEDIA_TYPES.system, OLLAMA_MEDIA_TYPES.license]);
  assert.deepEqual(registry.manifest("scripted", "small"), manifest, "both tags name the same manifest");
  const blobUrlOf = (digest: string): string => `${registry.url}/v2/library/scripted/blobs/${digest}`;

  const config = (await (await fetch(blobUrlOf(manifest.config.digest))).json()) as Record<string, unknown>;
  assert.equal(config.model_format, "gguf");
  assert.equal(config.os, "linux");
  const [model, template, params] = manifest.layers;
  assert.equal(await (await fetch(blobUrlOf(template!.digest))).text(), REGISTRY_TEMPLATE);
  assert.deepEqual(await (await fetch(blobUrlOf(params!.digest))).json(), REGISTRY_PARAMS);
  const head = await fetch(blobUrlOf(template!.digest), { method: "HEAD" });
  assert.equal(head.headers.get("content-length"), String(template!.size));

  const redirect = await fetch(blobUrlOf(model!.digest), { redirect: "manual" });
  assert.equal(redirect.status, 307);
  assert.equal(new URL(redirect.headers.get("location")!).origin, internet.cdn.url);
  await redirect.arrayBuffer();
  const bytes = Buffer.from(await (await fetch(blobUrlOf(model!.digest))).arrayBuffer());
  assert.equal(`sha256:${sha256(bytes)}`, model!.digest);
  assert.equal(bytes.length, model!.size);
  assert.deepEqual(bytes, await readFile(internet.fixtures.scripted));

  const unknownManifest = await fetch(`${registry.url}/v2/library/nothing/manifests/latest`, { headers: accept });
  assert.equal(unknownManifest.status, 404);
  assert.deepEqual(await unknownManifest.json(), { errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] });
  assert.equal((await fetch(`${registry.url}/v2/library/scripted/manifests/huge`)).status, 404);
  const unknownBlob = await fetch(blobUrlOf(`sha256:${"0".repeat(64)}`));
  assert.equal(unknownBlob.status, 404);
  assert.equal(((await unknownBlob.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, "BLOB_UNKNOWN");
  assert.equal((await fetch(`${registry.url}/v2/library/other/blobs/${model!.digest}`)).status, 404, "a blob belongs to its repository");
});

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

test("split GGUF: every part valid; the first has all metadata and split.no/count/tensors.count (u16, u16, i32), the others only those", async () => {
  const parts = await Promise.all(internet.fixtures.splitParts.map((part) => readGgufLayout(part)));
  const whole = await readGguf(internet.fixtures.scripted);
  assert.equal(parts.length, 3);
  const splitKeys: Array<[string, number]> = [["split.no", 2], ["split.count", 2], ["split.tensors.count", 5]]; // u16, u16, i32
  for (const [i, part] of parts.entries()) {
    const keys = part.keyValues.map((kv): [string, number] => [kv.key, kv.valueType]);
    if (i === 0) assert.deepEqual(keys.slice(-3), splitKeys);
    else assert.deepEqual(keys, splitKeys);
    assert.ok(part.tensors.length > 0);
    const header = await readGguf(internet.fixtures.splitParts[i]!); // the store's validating reader accepts every part
    assert.equal(header.metadata.get("split.no"), i);
    assert.equal(header.metadata.get("split.count"), 3);
    assert.equal(header.metadata.get("split.tensors.count"), whole.tensors.length);
  }
  const first = await readGguf(internet.fixtures.splitParts[0]!, { maxArrayItems: 1_000_000 });
  for (const [key, value] of whole.metadata) if (key !== "general.name") assert.deepEqual(first.metadata.get(key), value, key);
  assert.deepEqual(parts.flatMap((p) => p.tensors.map((t) => t.name)), whole.tensors.map((t) => t.name));
});

test("split GGUF: writeSplitGguf and splitGguf keep every tensor's bytes", async () => {
  const dir = await mkdtemp(path.join(tmp, "split-"));
  const values = Float32Array.from({ length: 64 }, (_, i) => i / 4);
  const paths = await writeSplitGguf(dir, "m", {
    metadata: { "general.architecture": gguf.string("llama") },
    tensors: ["a", "b", "c"].map((name) => ({ name, shape: [64], type: "F32" as const, data: () => [values] })),
  }, 2);
  assert.deepEqual(paths.map((p) => path.basename(p)), ["m-00001-of-00002.gguf", "m-00002-of-00002.gguf"]);
  for (const file of paths) {
    const layout = await readGgufLayout(file);
    const bytes = await readFile(file);
    for (const tensor of layout.tensors) {
      const start = layout.dataOffset + Number(tensor.offset);
      assert.deepEqual(new Float32Array(bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + start + 256)), values);
    }
  }
  await assert.rejects(splitGguf(paths[1]!, dir, "x", 5), /cannot split 2 tensors into 5 parts/);
});

test("fixtures: multi sizes increase Q2_K < Q4_K_M < Q8_0 < F16; the F16 model's rows are multiples of 256", async () => {
  const { multi, f16Scripted } = internet.fixtures;
  const sizes = await Promise.all([multi.Q2_K, multi.Q4_K_M, multi.Q8_0, multi.F16].map(async (file) => (await readGguf(file)).fileSize));
  for (let i = 1; i < sizes.length; i++) assert.ok(sizes[i]! > sizes[i - 1]! * 1.2, `sizes ${sizes.join(" < ")}`);
  const f16 = await readGguf(f16Scripted);
  for (const tensor of f16.tensors) {
    if (tensor.dims.length === 2) {
      assert.equal(tensor.type, 1, `${tensor.name} is F16`);
      assert.equal(tensor.dims[0]! % 256, 0, tensor.name);
    }
  }
});

/** Chats once with a GGUF through node-llama-cpp (1 thread) and returns the reply. */
async function chatOnce(file: string): Promise<string> {
  llama ??= await getLlama({ build: "never", gpu: false, maxThreads: 1 });
  const model = await llama.loadModel({ modelPath: file });
  try {
    const context = await model.createContext({ threads: 1, contextSize: 512 });
    try {
      const chat = new LlamaChat({ contextSequence: context.getSequence() });
      const history = [...chat.chatWrapper.generateInitialChatHistory(), { type: "user" as const, text: "Hi! Who are you?" }];
      return (await chat.generateResponse(history, { temperature: 0.8, maxTokens: 64 })).response;
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

test("fixtures: node-llama-cpp loads the split model from its first part, the Q8_0 and the F16 scripted models, and each answers SCRIPTED_REPLY", async () => {
  for (const file of [internet.fixtures.splitParts[0]!, internet.fixtures.scripted, internet.fixtures.f16Scripted]) {
    assert.equal(await chatOnce(file), SCRIPTED_REPLY, path.basename(file));
  }
});

test("fixtures: llama.cpp's quantize tool makes K-quants of the F16 model (no tensor falls back) that still answer SCRIPTED_REPLY", async (t) => {
  const build = spawnSync(process.execPath, [path.join(import.meta.dirname, "..", "..", "scripts", "build-llama-server.mjs"), "--no-build"], { encoding: "utf8" });
  const quantize = path.join(path.dirname(build.stdout.trim().split("\n").at(-1) ?? ""), "llama-quantize");
  if (build.status !== 0 || !existsSync(quantize)) return t.skip("llama.cpp's quantize tool is not built here (scripts/build-llama-server.mjs builds it)");
  for (const [type, tokenEmbdType] of [["Q4_K_M", 12], ["Q2_K", 10]] as const) {
    const out = path.join(tmp, `f16-${type}.gguf`);
    const run = spawnSync(quantize, [internet.fixtures.f16Scripted, out, type, "1"], { encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    assert.doesNotMatch(run.stdout + run.stderr, /fallback/i);
    const header = await readGguf(out);
    assert.equal(header.tensors.find((x) => x.name === "token_embd.weight")?.type, tokenEmbdType, `${type}: token_embd is a K-quant`);
    assert.equal(await chatOnce(out), SCRIPTED_REPLY, type);
  }
});
