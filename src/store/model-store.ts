import { createHash } from "node:crypto";
import type Database from "better-sqlite3";
import { z } from "zod";
import { ModelNotFoundError } from "../domain/errors.js";
import type { ModelMetadata, ModelRecord } from "../domain/model.js";
import { normalizeModelName } from "../domain/model-name.js";
import { modelMetadataFrom } from "../gguf/model-metadata.js";
import { readGguf } from "../gguf/read-gguf.js";
import type { BlobStore } from "./blob-store.js";
import type { Db } from "./database.js";

/** What a model is made of; stored as JSON, its sha256 is the model's digest. */
const manifestSchema = z.object({
  schemaVersion: z.literal(1),
  model: z.object({ digest: z.string(), size: z.number() }),
  template: z.string().optional(),
  system: z.string().optional(),
  license: z.string().optional(),
  parameters: z.record(z.string(), z.unknown()),
  metadata: z.custom<ModelMetadata>((v) => typeof v === "object" && v !== null),
});
type Manifest = z.infer<typeof manifestSchema>;

export interface CreateModelInput {
  name: string;
  /** Digest of a GGUF blob already in the blob store. */
  modelDigest: string;
  template?: string;
  system?: string;
  license?: string;
  parameters?: Record<string, unknown>;
}

/**
 * Names → manifests, in SQLite (each change is one transaction, so it is atomic and durable), over a BlobStore.
 * A model is only recorded after its weights blob has been read and validated as GGUF.
 *
 * Reads come from the records parsed once and kept until the data changes (every request looks its model up, and
 * the scheduler asks whether weights are still referenced at each acquire and release): this process's own
 * writes drop them, and so does a commit by another connection (another process on the same home), which SQLite's
 * `data_version` reveals.
 */
export class ModelStore {
  private readonly listeners: Array<() => void> = [];
  private readonly statements: {
    version: Database.Statement<[], unknown>;
    all: Database.Statement<[], unknown>;
    manifest: Database.Statement<[string], unknown>;
    upsert: Database.Statement<[string, string, string, number]>;
    remove: Database.Statement<[string]>;
  };
  private cache?: { version: number; byName: Map<string, ModelRecord>; list: ModelRecord[] };

  constructor(private readonly db: Db, readonly blobs: BlobStore) {
    this.statements = {
      version: db.prepare("PRAGMA data_version").pluck(),
      all: db.prepare("SELECT name, digest, manifest, modified_at FROM models ORDER BY modified_at DESC"),
      manifest: db.prepare<[string]>("SELECT manifest FROM models WHERE name = ?").pluck(),
      upsert: db.prepare<[string, string, string, number]>(
        `INSERT INTO models (name, digest, manifest, modified_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET name = excluded.name, digest = excluded.digest,
           manifest = excluded.manifest, modified_at = excluded.modified_at`,
      ),
      remove: db.prepare<[string]>("DELETE FROM models WHERE name = ?"),
    };
  }

  /** Calls `listener` after every change of names (create, copy, delete), whether it succeeded or not. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  private async changing<T>(change: () => Promise<T>): Promise<T> {
    try {
      return await change();
    } finally {
      for (const listener of this.listeners) listener();
    }
  }

  get(name: string): ModelRecord | undefined {
    return this.records().byName.get(nameKey(normalizeModelName(name)));
  }

  /** Like get, but throws ModelNotFoundError. */
  require(name: string): ModelRecord {
    const record = this.get(name);
    if (!record) throw new ModelNotFoundError(name);
    return record;
  }

  /** Every model, most recently modified first. */
  list(): readonly ModelRecord[] {
    return this.records().list;
  }

  /** Whether any name uses these weights. */
  references(modelDigest: string): boolean {
    return this.list().some((record) => record.modelDigest === modelDigest);
  }

  /** The parsed records, re-read when the database changed since they were read. */
  private records(): { byName: Map<string, ModelRecord>; list: ModelRecord[] } {
    const version = Number(this.statements.version.get());
    if (this.cache?.version === version) return this.cache;
    const list = this.statements.all.all().map((row) => deepFreeze(toRecord(rowSchema.parse(row))));
    this.cache = { version, list, byName: new Map(list.map((record) => [nameKey(record.name), record])) };
    return this.cache;
  }

  /**
   * Validates the blob as a GGUF model and records the model under `name`, replacing any model of that name.
   * Throws InvalidModelFileError (nothing changes) when the blob is not a loadable GGUF.
   */
  async create(input: CreateModelInput): Promise<ModelRecord> {
    return this.changing(() => this.createNow(input));
  }

  private async createNow(input: CreateModelInput): Promise<ModelRecord> {
    const name = normalizeModelName(input.name);
    const file = await this.blobs.require(input.modelDigest);
    const gguf = await readGguf(file);
    const manifest: Manifest = {
      schemaVersion: 1,
      model: { digest: input.modelDigest, size: gguf.fileSize },
      ...(input.template !== undefined && { template: input.template }),
      ...(input.system !== undefined && { system: input.system }),
      ...(input.license !== undefined && { license: input.license }),
      parameters: input.parameters ?? {},
      metadata: modelMetadataFrom(gguf),
    };
    const replaced = this.get(name);
    this.put(name, manifest);
    if (replaced) await this.releaseBlob(replaced.modelDigest);
    return this.require(name);
  }

  /** Records `destination` as a second name for the model `source`. */
  async copy(source: string, destination: string): Promise<void> {
    return this.changing(() => this.copyNow(source, destination));
  }

  private async copyNow(source: string, destination: string): Promise<void> {
    const from = this.require(source);
    const manifest = this.statements.manifest.get(from.name);
    const name = normalizeModelName(destination);
    const replaced = this.get(name);
    this.put(name, manifestSchema.parse(JSON.parse(String(manifest))));
    if (replaced) await this.releaseBlob(replaced.modelDigest);
  }

  /** Removes the name, then its weights unless another model uses them. */
  async delete(name: string): Promise<void> {
    return this.changing(() => this.deleteNow(name));
  }

  private async deleteNow(name: string): Promise<void> {
    const record = this.require(name);
    this.statements.remove.run(record.name);
    this.cache = undefined;
    await this.releaseBlob(record.modelDigest);
  }

  /** Deletes a blob once no model references it. (Blobs uploaded for a create that has not happened yet are kept.) */
  private async releaseBlob(digest: string): Promise<void> {
    if (!this.references(digest)) await this.blobs.remove(digest);
  }

  private put(name: string, manifest: Manifest): void {
    const json = JSON.stringify(manifest);
    const digest = createHash("sha256").update(json).digest("hex");
    this.statements.upsert.run(name, digest, json, Date.now());
    this.cache = undefined;
  }
}

const rowSchema = z.object({ name: z.string(), digest: z.string(), manifest: z.string(), modified_at: z.number() });

/** Names are compared without case, as the table's NOCASE collation does (ASCII letters only, as names are). */
function nameKey(name: string): string {
  return name.toLowerCase();
}

/** Records are shared by every reader of the cache: none may change one. */
function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

function toRecord(row: z.infer<typeof rowSchema>): ModelRecord {
  const manifest = manifestSchema.parse(JSON.parse(row.manifest));
  return {
    name: row.name,
    digest: row.digest,
    modelDigest: manifest.model.digest,
    size: manifest.model.size,
    ...(manifest.template !== undefined && { template: manifest.template }),
    ...(manifest.system !== undefined && { system: manifest.system }),
    ...(manifest.license !== undefined && { license: manifest.license }),
    parameters: manifest.parameters,
    metadata: manifest.metadata,
    modifiedAt: new Date(row.modified_at),
  };
}
