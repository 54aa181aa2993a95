/**
 * The model store on a real SQLite file and a real PostgreSQL (the same tests on both): replacing names frees unused
 * weights; a change made through another connection (another process, or another replica) is read at the next
 * refresh; names are one per model whatever their case.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { openModelStore } from "../../src/store/open-store.js";
import { SharedState } from "../../src/store/sql/shared-state.js";
import { writeFakeModel } from "../helpers/gguf-files.js";
import { DIALECTS, TestDatabases } from "../helpers/test-databases.js";

const databases = new TestDatabases();
after(() => databases.close());

for (const { dialect, skip } of DIALECTS) {
  describe(`on ${dialect}`, { skip }, () => {
    /** A fresh home, and the database its stores open (the SQLite file in it, or a fresh PostgreSQL database). */
    async function freshHome(): Promise<{ home: string; databaseUrl: string }> {
      const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-store-"));
      return { home, databaseUrl: (await databases.target(dialect)).url ?? "" };
    }

    test("replacing a name by copy or create frees the old weights, and only when no other name uses them", async () => {
      const { home, databaseUrl } = await freshHome();
      const { store, close } = await openModelStore(home, { databaseUrl });
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
        await close();
        await rm(home, { recursive: true, force: true });
      }
    });

    test("reads see every change: this store's own at once, another connection's (process, replica) after a refresh", async () => {
      const { home, databaseUrl } = await freshHome();
      const first = await openModelStore(home, { databaseUrl });
      const second = await openModelStore(home, { databaseUrl });
      const refresh = (opened: typeof first): Promise<void> => SharedState.of(opened.db).refresh();
      try {
        const file = path.join(home, "a.gguf");
        await writeFakeModel(file);
        const digest = (await first.store.blobs.importFile(file)).digest;
        await first.store.create({ name: "one", modelDigest: digest });
        await refresh(second);
        assert.equal(second.store.require("one").modelDigest, digest);
        assert.equal(second.store.get("ONE:latest")?.name, first.store.require("one").name, "names are compared without case");

        await second.store.create({ name: "two", modelDigest: digest, parameters: { temperature: 0.5 } });
        await refresh(first);
        assert.deepEqual(first.store.get("two")?.parameters, { temperature: 0.5 });
        assert.deepEqual(first.store.list().map((m) => m.name), ["two:latest", "one:latest"]);
        await second.store.delete("one");
        await refresh(first);
        assert.equal(first.store.get("one"), undefined);
        assert.equal(first.store.references(digest), true);

        const record = first.store.require("two");
        assert.throws(() => ((record.parameters as Record<string, unknown>).temperature = 1), TypeError, "records are shared: frozen");
      } finally {
        await first.close();
        await second.close();
        await rm(home, { recursive: true, force: true });
      }
    });

    test("a name is one model whatever its case: creating it in another case replaces it, under the new spelling", async () => {
      const { home, databaseUrl } = await freshHome();
      const { store, db, close } = await openModelStore(home, { databaseUrl });
      try {
        const file = path.join(home, "a.gguf");
        await writeFakeModel(file);
        const digest = (await store.blobs.importFile(file)).digest;
        await store.create({ name: "Qwen", modelDigest: digest });
        await store.create({ name: "qwen", modelDigest: digest, system: "again" });
        assert.deepEqual(store.list().map((m) => [m.name, m.system]), [["qwen:latest", "again"]]);
        assert.equal(Number((await db.get("SELECT count(*) AS n FROM models"))?.n), 1, "one row");
        await store.copy("QWEN", "Other");
        await store.delete("OTHER:LATEST");
        assert.deepEqual(store.list().map((m) => m.name), ["qwen:latest"]);
      } finally {
        await close();
        await rm(home, { recursive: true, force: true });
      }
    });
  });
}
