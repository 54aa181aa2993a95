import { mkdir } from "node:fs/promises";
import path from "node:path";
import { BlobStore } from "./blob-store.js";
import { openDatabase } from "./database.js";
import { ModelStore } from "./model-store.js";

/** Where data lives under AI_SERVER_HOME. */
export function dataPaths(home: string): { blobs: string; database: string } {
  return { blobs: path.join(home, "models", "blobs"), database: path.join(home, "ai-server.db") };
}

/** Opens the model store under `home` (used by the server, and by the CLI when no server runs). */
export async function openModelStore(home: string): Promise<{ store: ModelStore; close(): void }> {
  const paths = dataPaths(home);
  await mkdir(home, { recursive: true });
  const blobs = await BlobStore.open(paths.blobs);
  const db = openDatabase(paths.database);
  return { store: new ModelStore(db, blobs), close: () => db.close() };
}
