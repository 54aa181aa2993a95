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

test("reads see every change: this store's own, and another connection's on the same home (another process)", async () => {
  const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-store-"));
  const first = await openModelStore(home);
  const second = await openModelStore(home);
  try {
    const file = path.join(home, "a.gguf");
    await writeFakeModel(file);
    const digest = (await first.store.blobs.importFile(file)).digest;
    await first.store.create({ name: "one", modelDigest: digest });
    assert.equal(second.store.require("one").modelDigest, digest);
    assert.equal(second.store.get("ONE:latest")?.name, first.store.require("one").name, "names are compared without case");

    await second.store.create({ name: "two", modelDigest: digest, parameters: { temperature: 0.5 } });
    assert.deepEqual(first.store.get("two")?.parameters, { temperature: 0.5 });
    assert.deepEqual(first.store.list().map((m) => m.name), ["two:latest", "one:latest"]);
    await second.store.delete("one");
    assert.equal(first.store.get("one"), undefined);
    assert.equal(first.store.references(digest), true);

    const record = first.store.require("two");
    assert.throws(() => ((record.parameters as Record<string, unknown>).temperature = 1), TypeError, "records are shared: frozen");
  } finally {
    first.close();
    second.close();
    await rm(home, { recursive: true, force: true });
  }
});
