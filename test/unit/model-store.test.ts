import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { openModelStore } from "../../src/store/open-store.js";
import { writeFakeModel } from "../helpers/gguf-files.js";

test("replacing a name by copy or create frees the old weights, and only when no other name uses them", async () => {
  const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-store-"));
  const { store, close } = await openModelStore(home);
  try {
    const a = path.join(home, "a.gguf");
    const b = path.join(home, "b.gguf");
    await writeFakeModel(a);
    await writeFakeModel(b, { architecture: "bert" });
    const digestA = (await store.blobs.importFile(a)).digest;
    const digestB = (await store.blobs.importFile(b)).digest;
    await store.create({ name: "one", modelDigest: digestA });
    await store.create({ name: "two", modelDigest: digestB });
    await store.copy("one", "alias");

    await store.copy("one", "two"); // "two" now means A: B's weights are unused
    assert.equal(await store.blobs.has(digestB), false);
    assert.equal(store.require("two").modelDigest, digestA);

    await store.delete("one"); // "alias" and "two" still use A
    assert.equal(await store.blobs.has(digestA), true);
    await store.delete("alias");
    await store.delete("two");
    assert.equal(await store.blobs.has(digestA), false);
    assert.deepEqual(store.list(), []);
  } finally {
    close();
    await rm(home, { recursive: true, force: true });
  }
});
