import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { BlobStore } from "../../src/store/blob-store.js";

test("open removes a crashed write's stale temp file but leaves a fresh one (a write in progress elsewhere on a shared folder)", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-blobs-"));
  try {
    const stale = path.join(dir, ".partial-stale");
    const fresh = path.join(dir, ".partial-fresh");
    await writeFile(stale, "left by a crash");
    await writeFile(fresh, "being written");
    const hourAgo = new Date(Date.now() - 60 * 60_000);
    await utimes(stale, hourAgo, hourAgo);
    await BlobStore.open(dir);
    assert.deepEqual((await readdir(dir)).sort(), [".partial-fresh"]);
    // Once it too has gone untouched long enough, it is a leftover
    await BlobStore.open(dir, Date.now() + 60 * 60_000);
    assert.deepEqual(await readdir(dir), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
