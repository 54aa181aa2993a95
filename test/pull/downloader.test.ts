// The internet is what cannot exist here: test/helpers/range-server.ts stands in for it (a CDN, the Hub's resolve
// endpoint, a registry's blob route) on 127.0.0.1, serving a generated random file with switchable faults.
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { DownloadVerificationError, UpstreamAccessError, UpstreamError, UpstreamNotFoundError } from "../../src/domain/errors.js";
import { Downloader, type DownloaderSettings, type DownloadProgress, type DownloadRequest } from "../../src/pull/download/downloader.js";
import { startRangeServer, writeRandomFile, type RangeServer, type RangeServerSwitches, type TestFile } from "../helpers/range-server.js";

const PART = 256 << 10;
// A generous stall timeout, so a loaded machine never makes a healthy connection look stalled; the stall test sets
// a short one.
const SETTINGS: DownloaderSettings = { connections: 4, partSize: PART, stallTimeoutMs: 5000, retryBaseMs: 10 };

let root: string;
let file: TestFile;
let original: Buffer;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "ai-server-download-"));
  file = await writeRandomFile(path.join(root, "served.bin"), 3 * (1 << 20) + 12345); // 13 parts, the last one short
  original = await readFile(file.path);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh downloads directory, a server with these switches, and a downloader; all closed afterwards. */
async function scenario(
  switches: Partial<RangeServerSwitches>,
  run: (context: { server: RangeServer; dir: string; downloader: Downloader; request: DownloadRequest; notices: string[] }) => Promise<void>,
  settings: Partial<DownloaderSettings> = {},
): Promise<void> {
  const dir = await mkdtemp(path.join(root, "downloads-"));
  const server = await startRangeServer(file, switches);
  const downloader = new Downloader(dir, { ...SETTINGS, ...settings });
  try {
    await run({ server, dir, downloader, request: { url: server.url, size: file.size, sha256: file.sha256 }, notices: [] });
  } finally {
    await downloader.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function assertVerified(result: { path: string; digest: string }, dir: string): Promise<void> {
  assert.equal(result.digest, file.sha256);
  assert.equal(path.dirname(result.path), dir);
  assert.ok((await readFile(result.path)).equals(original), "the file holds the served bytes");
  assert.deepEqual(await readdir(dir), [path.basename(result.path)], "only the verified file is left");
}

test("a file arrives in several ranged parts over parallel connections, verified, with progress to the end", async () => {
  await scenario({ bytesPerSecond: 8 << 20 }, async ({ server, dir, downloader, request, notices }) => {
    const progress: DownloadProgress[] = [];
    const result = await downloader.download(request, { onProgress: (p) => progress.push(p), onNotice: (m) => notices.push(m) });
    await assertVerified(result, dir);
    assert.equal(server.requests.length, Math.ceil(file.size / PART), "one request per part");
    assert.ok(server.requests.every((r) => r.status === 206 && /^bytes=\d+-\d+$/.test(r.range ?? "")), "every request is ranged");
    assert.equal(server.bytesServed, file.size);
    assert.equal(server.peakConcurrency, SETTINGS.connections, "parts are fetched in parallel, as many at once as configured");
    assert.deepEqual(progress.at(-1), { completed: file.size, total: file.size });
    assert.ok(progress.every((p, i) => i === 0 || p.completed >= progress[i - 1]!.completed), "progress never goes back");
    assert.ok(notices.includes("verifying sha256 digest"));
    assert.equal(await downloader.partialBytes(request), file.size, "a verified file counts as all there");
    const again = await downloader.download(request);
    assert.equal(again.path, result.path, "a verified file that was not adopted yet is handed out again");
    assert.equal(server.bytesServed, file.size, "without fetching it again");
  });
});

test("redirects are followed; the token goes to the url's own origin, never to the one a redirect leads to", async () => {
  const cdn = await startRangeServer(file);
  try {
    await scenario({ redirectTo: `${cdn.origin}/signed/file?expires=1` }, async ({ server, dir, downloader, request }) => {
      const result = await downloader.download({ ...request, headers: { authorization: "Bearer secret" } });
      await assertVerified(result, dir);
      assert.ok(server.requests.length >= 2 && server.requests.every((r) => r.status === 302 && r.authorization === "Bearer secret"));
      assert.equal(cdn.requests.length, server.requests.length, "every part resolves the redirect again");
      assert.ok(cdn.requests.every((r) => r.path === "/signed/file?expires=1" && r.authorization === undefined), "no token for the other origin");
    });
    await scenario({ redirectTo: "/blobs/file" }, async ({ server, dir, downloader, request }) => {
      await assertVerified(await downloader.download({ ...request, headers: { authorization: "Bearer secret" } }), dir);
      const served = server.requests.filter((r) => r.path === "/blobs/file");
      assert.ok(served.length > 0 && served.every((r) => r.status === 206 && r.authorization === "Bearer secret"), "a relative Location stays on the origin");
    });
  } finally {
    await cdn.close();
  }
});

test("a connection cut mid-part resumes where it stopped, not from the part's start", async () => {
  await scenario({ cut: { afterBytes: 100_000, times: 1 } }, async ({ server, dir, downloader, request, notices }) => {
    await assertVerified(await downloader.download(request, { onNotice: (m) => notices.push(m) }), dir);
    assert.ok(server.bytesServed < file.size + 2 * PART, `served ${server.bytesServed} bytes for a ${file.size}-byte file`);
    const resumed = server.requests.filter((r) => Number(/^bytes=(\d+)/.exec(r.range ?? "")?.[1]) % PART !== 0);
    assert.equal(resumed.length, 1, "one request starts mid-part");
    assert.equal(Number(/^bytes=(\d+)/.exec(resumed[0]!.range!)?.[1]) % PART, 100_000, "right after the bytes that arrived");
    assert.ok(notices.some((m) => /retrying/.test(m)), notices.join("\n"));
  });
});

test("corrupted bytes: the download is fetched once more from scratch; corrupted again, nothing is kept", async () => {
  await scenario({ corrupt: { offset: 1_000_000, times: 1 } }, async ({ server, dir, downloader, request, notices }) => {
    await assertVerified(await downloader.download(request, { onNotice: (m) => notices.push(m) }), dir);
    assert.equal(server.bytesServed, 2 * file.size);
    assert.ok(notices.some((m) => m.startsWith("sha256 mismatch") && m.includes("from scratch")), notices.join("\n"));
  });
  await scenario({ corrupt: { offset: 1_000_000, times: Infinity } }, async ({ dir, downloader, request }) => {
    await assert.rejects(downloader.download(request), DownloadVerificationError);
    assert.deepEqual(await readdir(dir), [], "nothing left on disk");
    assert.equal(await downloader.partialBytes(request), 0);
  });
});

test("a stalled connection is dropped after the stall timeout and its part retried", async () => {
  await scenario({ stall: { afterBytes: 50_000, times: 1 } }, async ({ dir, downloader, request, notices }) => {
    await assertVerified(await downloader.download(request, { onNotice: (m) => notices.push(m) }), dir);
    assert.ok(notices.some((m) => m.includes("stalled: no byte for 0.3 s")), notices.join("\n"));
  }, { stallTimeoutMs: 300 });
});

test("a passing failure (503, 416) is retried with backoff and the download completes", async () => {
  for (const status of [503, 416]) {
    await scenario({ fail: { status, times: 2 } }, async ({ dir, downloader, request, notices }) => {
      await assertVerified(await downloader.download(request, { onNotice: (m) => notices.push(m) }), dir);
      assert.equal(notices.filter((m) => m.includes(`(HTTP ${status}); retrying in`) || m.includes(`HTTP ${status}; retrying in`)).length, 2, notices.join("\n"));
    });
  }
});

test("429 waits as Retry-After says, and is not a failed attempt", async () => {
  const switches = { tooManyRequests: { times: 3, headers: { "retry-after": "1" } } };
  await scenario(switches, async ({ dir, downloader, request, notices }) => {
    await assertVerified(await downloader.download(request, { onNotice: (m) => notices.push(m) }), dir);
    assert.equal(notices.filter((m) => m.endsWith("rate-limiting requests (HTTP 429): waiting 1 s")).length, 3, notices.join("\n"));
  }, { maxAttempts: 1 });
});

test("a server that ignores Range: the file comes whole over one connection", async () => {
  await scenario({ ranges: false }, async ({ server, dir, downloader, request, notices }) => {
    await assertVerified(await downloader.download(request, { onNotice: (m) => notices.push(m) }), dir);
    assert.ok(notices.some((m) => m.includes("ignores Range requests")), notices.join("\n"));
    const complete = server.requests.filter((r) => r.status === 200);
    assert.ok(server.bytesServed >= file.size && complete.length <= SETTINGS.connections + 1);
  });
});

test("upstream answers become catalog errors: 404, 403 with the server's reason, a changed size, 5xx after the attempts", async () => {
  await scenario({ fail: { status: 404, times: Infinity } }, async ({ downloader, request }) => {
    await assert.rejects(downloader.download(request), UpstreamNotFoundError);
  });
  const gated = { status: 403, times: Infinity, headers: { "x-error-code": "GatedRepo" }, body: "Access to model x/y is restricted" };
  await scenario({ fail: gated }, async ({ downloader, request }) => {
    await assert.rejects(downloader.download(request), (error: Error) => {
      assert.ok(error instanceof UpstreamAccessError);
      assert.match(error.message, /HTTP 403\): GatedRepo: Access to model x\/y is restricted/);
      return true;
    });
  });
  await scenario({}, async ({ downloader, request }) => {
    await assert.rejects(downloader.download({ ...request, size: file.size + 1 }), (error: Error) => {
      assert.ok(error instanceof UpstreamError);
      assert.match(error.message, new RegExp(`expected ${file.size + 1} bytes, the server has ${file.size}`));
      return true;
    });
  });
  await scenario({ fail: { status: 503, times: Infinity } }, async ({ server, downloader, request }) => {
    await assert.rejects(downloader.download(request), (error: Error) => {
      assert.ok(error instanceof UpstreamError);
      assert.match(error.message, /failed 3 times; the last time: .* answered HTTP 503/);
      return true;
    });
    assert.ok(server.requests.length >= 3);
  }, { maxAttempts: 3 });
});

test("an aborted download keeps its bytes, and a new downloader on the same directory fetches only what is missing", async () => {
  await scenario({ bytesPerSecond: 1 << 20 }, async ({ server, dir, downloader, request }) => {
    const controller = new AbortController();
    const reason = new Error("cancelled");
    const first = downloader.download(request, {
      signal: controller.signal,
      onProgress: ({ completed }) => completed > file.size / 4 && controller.abort(reason),
    });
    await assert.rejects(first, (error) => error === reason);
    const kept = await downloader.partialBytes(request);
    assert.ok(kept > file.size / 4 && kept < file.size, `kept ${kept} bytes`);

    server.resetCounts();
    server.switches.bytesPerSecond = undefined;
    const resumed = new Downloader(dir, SETTINGS);
    try {
      assert.equal(await resumed.partialBytes(request), kept);
      const progress: DownloadProgress[] = [];
      await assertVerified(await resumed.download(request, { onProgress: (p) => progress.push(p) }), dir);
      assert.equal(server.bytesServed, file.size - kept, "only the missing bytes were fetched");
      assert.ok(progress[0]!.completed >= kept, "progress counts the resumed bytes");
    } finally {
      await resumed.close();
    }
  });
});

test("saved progress that does not match the file (or cannot be read) is dropped and the download starts over", async () => {
  await scenario({}, async ({ server, dir, downloader, request }) => {
    const key = file.sha256.replace(":", "-");
    await writeFile(path.join(dir, `${key}.partial`), original.subarray(0, file.size)); // full size, right bytes
    await writeFile(path.join(dir, `${key}.parts.json`), JSON.stringify({ version: 1, size: file.size - 1, sha256: file.sha256, gitBlobSha1: null, parts: [[0, file.size - 1, file.size - 1]] }));
    assert.equal(await downloader.partialBytes(request), 0);
    await writeFile(path.join(dir, `${key}.parts.json`), "{ torn");
    assert.equal(await downloader.partialBytes(request), 0);
    await assertVerified(await downloader.download(request), dir);
    assert.equal(server.bytesServed, file.size, "fetched whole");
  });
});

test("an empty file needs no request", async () => {
  await scenario({}, async ({ server, dir, downloader }) => {
    const empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const result = await downloader.download({ url: server.url, size: 0, sha256: empty });
    assert.equal(result.digest, empty);
    assert.equal((await readFile(result.path)).length, 0);
    assert.deepEqual(await readdir(dir), [path.basename(result.path)]);
    assert.equal(server.requests.length, 0);
  });
});

test("two calls for one file share one download, each with its own progress", async () => {
  await scenario({ bytesPerSecond: 4 << 20 }, async ({ server, dir, downloader, request }) => {
    const seen = [0, 0];
    const [a, b] = await Promise.all([
      downloader.download(request, { onProgress: () => seen[0]!++ }),
      downloader.download(request, { onProgress: () => seen[1]!++ }),
    ]);
    assert.deepEqual(a, b);
    await assertVerified(a, dir);
    assert.equal(server.bytesServed, file.size, "fetched once");
    assert.ok(seen[0]! > 0 && seen[1]! > 0);
  });
});

test("one caller leaving does not stop the download another caller waits for; discard then removes nothing in use", async () => {
  await scenario({ bytesPerSecond: 4 << 20 }, async ({ dir, downloader, request }) => {
    const controller = new AbortController();
    const leaving = downloader.download(request, { signal: controller.signal });
    const staying = downloader.download(request);
    controller.abort(new Error("gone"));
    await assert.rejects(leaving, /gone/);
    await downloader.discard(request); // the other caller still uses the data
    await assertVerified(await staying, dir);
  });
});

test("discard after abort removes the partial data", async () => {
  await scenario({ bytesPerSecond: 1 << 20 }, async ({ dir, downloader, request }) => {
    const controller = new AbortController();
    const download = downloader.download(request, { signal: controller.signal, onProgress: ({ completed }) => completed > 0 && controller.abort() });
    await assert.rejects(download, { name: "AbortError" });
    assert.ok((await readdir(dir)).length > 0);
    await downloader.discard(request);
    assert.deepEqual(await readdir(dir), []);
  });
});

test("a small git file is verified by its git blob id alone, and its sha256 is still computed", async () => {
  await scenario({}, async ({ dir, downloader, server }) => {
    const request = { url: server.url, size: file.size, gitBlobSha1: file.gitBlobSha1 };
    await assertVerified(await downloader.download(request), dir);
    await rm(dir, { recursive: true });
    const wrong = { ...request, gitBlobSha1: "0".repeat(40) };
    await assert.rejects(downloader.download(wrong), (error: Error) => error instanceof DownloadVerificationError && /git blob id mismatch/.test(error.message));
    assert.deepEqual(await readdir(dir), []);
  });
});
