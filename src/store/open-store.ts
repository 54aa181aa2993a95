import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { BlobStore } from "./blob-store.js";
import { openDatabase, type Db } from "./database.js";
import { ModelStore } from "./model-store.js";

/** Where data lives under AI_SERVER_HOME. */
export function dataPaths(home: string): { blobs: string; downloads: string; probes: string; splits: string; quantize: string; database: string } {
  return {
    blobs: path.join(home, "models", "blobs"),
    downloads: path.join(home, "models", "downloads"),
    /** GGUF headers fetched to size a remote model before pulling it (sparse files, removed after). */
    probes: path.join(home, "models", "probes"),
    splits: path.join(home, "models", "splits"),
    /** What the quantize tool is writing (beside the blobs: adopting a result is a rename). */
    quantize: path.join(home, "models", "quantize"),
    database: path.join(home, "ai-server.db"),
  };
}

/**
 * Opens the model store under `home` (used by the server, and by the CLI when no server runs), and the database
 * it lives in, for the other tables (jobs, quantizations).
 */
export async function openModelStore(home: string): Promise<{ store: ModelStore; db: Db; close(): void }> {
  const paths = dataPaths(home);
  await mkdir(home, { recursive: true });
  await rm(paths.probes, { recursive: true, force: true }); // header probes a killed server left behind
  const blobs = await BlobStore.open(paths.blobs);
  const db = openDatabase(paths.database);
  const store = new ModelStore(db, blobs, paths.splits);
  await store.linkSplits();
  return { store, db, close: () => db.close() };
}
