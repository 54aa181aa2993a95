// The internet is what cannot exist here: test/helpers/range-server.ts stands in for it on 127.0.0.1. A full disk is
// real: a small tmpfs mounted in a temp directory (root may mount one; elsewhere those tests skip and say why).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, open, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test, type TestContext } from "node:test";
import { InsufficientStorageError } from "../../src/domain/errors.js";
import { Downloader, type DownloaderSettings } from "../../src/pull/download/downloader.js";
import { BlobStore } from "../../src/store/blob-store.js";
import { startRangeServer, writeRandomFile, type TestFile } from "../helpers/range-server.js";

const SETTINGS: DownloaderSettings = { connections: 4, partSize: 256 << 10, stallTimeoutMs: 5000, retryBaseMs: 10 };

let root: string;
let file: TestFile;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "ai-server-download-storage-"));
  file = await writeRandomFile(path.join(root, "served.bin"), 3 << 20);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Runs `body` with a tmpfs of `size` mounted on a fresh directory; skips the test when mounting is not permitted. */
async function withTmpfs(t: TestContext, size: string, body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(root, "tmpfs-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "pipe" });
  } catch (error) {
    t.skip(`cannot mount a tmpfs here (needs root): ${(error as Error).message.split("\n")[0]}`);
    return;
  }
  try {
    await body(dir);
  } finally {
    execFileSync("umount", [dir]);
  }
}

/** Writes zeros into `dir` until its file system is full. */
async function fillUp(dir: string): Promise<void> {
  const handle = await open(path.join(dir, "filler"), "w");
  try {
    for (;;) await handle.write(Buffer.alloc(64 << 10));
  } catch (error) {
    assert.equal((error as NodeJS.ErrnoException).code, "ENOSPC");
  } finally {
    await handle.close();
  }
}

test("too little free space fails with InsufficientStorageError before a byte is fetched", async (t) => {
  await withTmpfs(t, "2m", async (dir) => {
    const server = await startRangeServer(file);
    const downloader = new Downloader(dir, SETTINGS);
    try {
      const download = downloader.download({ url: server.url, size: file.size, sha256: file.sha256 });
      await assert.rejects(download, (error: Error) => {
        assert.ok(error instanceof InsufficientStorageError);
        assert.match(error.message, new RegExp(`needs 4.00 MiB, 2.00 MiB free under ${dir}`));
        return true;
      });
      assert.equal(server.requests.length, 0);
    } finally {
      await downloader.close();
      await server.close();
    }
  });
});

test("a disk that fills up mid-download fails cleanly with InsufficientStorageError; with room again, it finishes", async (t) => {
  await withTmpfs(t, "8m", async (dir) => {
    const server = await startRangeServer(file, { bytesPerSecond: 1 << 20 });
    const downloader = new Downloader(dir, SETTINGS);
    try {
      const request = { url: server.url, size: file.size, sha256: file.sha256 };
      let filling: Promise<void> | undefined;
      const download = downloader.download(request, { onProgress: ({ completed }) => void (completed > 0 && (filling ??= fillUp(dir))) });
      await assert.rejects(download, InsufficientStorageError);
      await filling;
      assert.ok((await readdir(dir)).some((name) => name.endsWith(".partial")), "the partial data is kept");

      await rm(path.join(dir, "filler"));
      server.switches.bytesPerSecond = undefined;
      const result = await downloader.download(request);
      assert.equal(result.digest, file.sha256);
    } finally {
      await downloader.close();
      await server.close();
    }
  });
});

test("BlobStore.adopt moves a verified download into the store by rename; a blob already there just drops the file", async () => {
  const home = await mkdtemp(path.join(root, "home-"));
  const server = await startRangeServer(file);
  const downloader = new Downloader(path.join(home, "downloads"), SETTINGS);
  try {
    const blobs = await BlobStore.open(path.join(home, "blobs"));
    const request = { url: server.url, size: file.size, sha256: file.sha256 };
    const first = await downloader.download(request);
    await blobs.adopt(first.path, first.digest);
    assert.deepEqual(await blobs.list(), [file.sha256]);
    assert.ok((await readFile(blobs.pathOf(file.sha256))).equals(await readFile(file.path)));
    assert.deepEqual(await readdir(downloader.dir), []);

    const second = await downloader.download(request);
    await blobs.adopt(second.path, second.digest);
    assert.deepEqual(await readdir(downloader.dir), [], "the duplicate is removed");
    assert.deepEqual(await blobs.list(), [file.sha256]);
  } finally {
    await downloader.close();
    await server.close();
    await rm(home, { recursive: true, force: true });
  }
});

test("BlobStore.adopt from another file system copies the file (hashing it again) and removes it", async (t) => {
  await withTmpfs(t, "16m", async (dir) => {
    const server = await startRangeServer(file);
    const downloader = new Downloader(dir, SETTINGS);
    const blobsDir = await mkdtemp(path.join(root, "blobs-"));
    try {
      const blobs = await BlobStore.open(blobsDir);
      const result = await downloader.download({ url: server.url, size: file.size, sha256: file.sha256 });
      await blobs.adopt(result.path, result.digest);
      assert.deepEqual(await blobs.list(), [file.sha256]);
      assert.deepEqual(await readdir(dir), []);
    } finally {
      await downloader.close();
      await server.close();
      await rm(blobsDir, { recursive: true, force: true });
    }
  });
});
