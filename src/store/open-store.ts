import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { BlobStore } from "./blob-store.js";
import { openDatabase, type SqlDatabase } from "./database.js";
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

/** Where the state lives besides AI_SERVER_HOME: AI_SERVER_DATABASE_URL (empty = the SQLite file in the home). */
export interface StoreOptions {
  databaseUrl?: string;
  /** Told of PostgreSQL connections lost in the background. */
  warn?: (message: string) => void;
}

/**
 * Opens the model store under `home` (used by the server, and by the CLI when no server runs), and the database
 * it lives in (SQLite under `home`, or AI_SERVER_DATABASE_URL's PostgreSQL), for the other tables (jobs, keys, …).
 */
export async function openModelStore(home: string, options: StoreOptions = {}): Promise<{ store: ModelStore; db: SqlDatabase; close(): Promise<void> }> {
  const paths = dataPaths(home);
  await mkdir(home, { recursive: true });
  await rm(paths.probes, { recursive: true, force: true }); // header probes a killed server left behind
  const blobs = await BlobStore.open(paths.blobs);
  const db = await openDatabase({ file: paths.database, url: options.databaseUrl ?? "", ...(options.warn && { warn: options.warn }) });
  try {
    const store = new ModelStore(db, blobs, paths.splits);
    await store.load();
    await store.linkSplits();
    return { store, db, close: () => db.close() };
  } catch (error) {
    await db.close();
    throw error;
  }
}
