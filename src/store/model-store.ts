import { createHash } from "node:crypto";
import { mkdir, readlink, rm, symlink } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { InvalidModelFileError, ModelNotFoundError } from "../domain/errors.js";
import type { ModelMetadata, ModelRecord } from "../domain/model.js";
import { normalizeModelName } from "../domain/model-name.js";
import { upstreamDigest, upstreamMetadata, type UpstreamConfig } from "../domain/upstream.js";
import { modelMetadataFrom } from "../gguf/model-metadata.js";
import { readGguf, type GgufFile } from "../gguf/read-gguf.js";
import { parseDigest, type BlobStore } from "./blob-store.js";
import type { SqlDatabase, SqlExecutor } from "./sql/sql-database.js";
import { TableCache } from "./sql/shared-state.js";

/** What a model is made of; stored as JSON, its sha256 is the model's digest. */
const manifestSchema = z.object({
  schemaVersion: z.literal(1),
  /** The weights: one GGUF, or the first part of a split GGUF with every part (in order) in `splits`; absent with `upstream`. */
  model: z.object({ digest: z.string(), size: z.number(), splits: z.array(z.object({ digest: z.string(), size: z.number() })).optional() }).optional(),
  /** Served by remote endpoints instead of weights (validated by /api/create). */
  upstream: z.custom<UpstreamConfig>((v) => typeof v === "object" && v !== null).optional(),
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
  /**
   * A split GGUF (`name-00001-of-0000N.gguf`): the digests of every part, in order, the first being `modelDigest`.
   * All must be in the blob store; the model loads as one.
   */
  splitDigests?: string[];
  template?: string;
  system?: string;
  license?: string;
  parameters?: Record<string, unknown>;
}

/** A model served by remote OpenAI-compatible endpoints: no weights, the configuration instead. */
export interface CreateUpstreamInput extends Omit<CreateModelInput, "modelDigest" | "splitDigests"> {
  upstream: UpstreamConfig;
}

/**
 * Names → manifests, in the database (each change is one transaction, so it is atomic and durable), over a
 * BlobStore. A model is only recorded after its weights blob has been read and validated as GGUF.
 *
 * Reads are synchronous, from the records parsed once and kept in memory (every request looks its model up, and
 * the scheduler asks whether weights are still referenced at each acquire and release): this process's own writes
 * read them again at once, and another process's or replica's are read at the next `refresh` of the database's
 * shared state (sql/shared-state.ts: before each request, and on PostgreSQL's notifications). `load` reads them
 * the first time.
 */
export class ModelStore {
  private readonly listeners: Array<() => void> = [];
  private readonly cache: TableCache<{ byName: Map<string, ModelRecord>; list: ModelRecord[] }>;
  /** Rows whose name equals a parameter, without case (SQLite's column is NOCASE; PostgreSQL compares lower()). */
  private readonly sameName: string;

  /**
   * @param splitsDir where split models get a directory of links named `model-0000i-of-0000N.gguf` to their parts'
   *   blobs: llama.cpp finds a split model's other parts by the first part's file name.
   */
  constructor(private readonly db: SqlDatabase, readonly blobs: BlobStore, private readonly splitsDir: string) {
    this.cache = new TableCache(db, "models", readRecords);
    this.sameName = db.dialect === "postgres" ? "lower(name) = lower(?)" : "name = ?";
  }

  /** Reads the models the first time (before any other method). */
  async load(): Promise<void> {
    await this.cache.load();
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

  /** Reads the database once, past every cache (the readiness check): rejects when it cannot be read. */
  async checkReadable(): Promise<void> {
    await this.db.get("SELECT 1 FROM models LIMIT 1");
  }

  /** Whether any name uses these weights (a whole model, or a part of a split one). */
  references(digest: string): boolean {
    return this.list().some((record) => record.modelDigest === digest || record.splitDigests?.includes(digest) === true);
  }

  /**
   * The file an engine loads for the weights `modelDigest`: the blob itself, or for a split model the link to its
   * first part beside links to the others (made by create, and again by linkSplits at start-up).
   */
  modelPath(modelDigest: string): string {
    const record = this.list().find((r) => r.modelDigest === modelDigest && r.splitDigests !== undefined);
    if (!record?.splitDigests) return this.blobs.pathOf(modelDigest);
    return this.splitLinks(record.splitDigests)[0] ?? this.blobs.pathOf(modelDigest);
  }

  /** (Re)creates the link directories of every split model (start-up: a copied home, a removed directory). */
  async linkSplits(): Promise<void> {
    for (const record of this.list()) if (record.splitDigests) await this.link(record.splitDigests);
  }

  private splitDir(firstDigest: string): string {
    return path.join(this.splitsDir, parseDigestHex(firstDigest));
  }

  private splitLinks(digests: readonly string[]): string[] {
    const dir = this.splitDir(digests[0] ?? "");
    const count = String(digests.length).padStart(5, "0");
    return digests.map((_, i) => path.join(dir, `model-${String(i + 1).padStart(5, "0")}-of-${count}.gguf`));
  }

  private async link(digests: readonly string[]): Promise<void> {
    await mkdir(this.splitDir(digests[0] ?? ""), { recursive: true });
    const links = this.splitLinks(digests);
    for (const [i, digest] of digests.entries()) {
      const link = links[i] ?? "";
      const target = this.blobs.pathOf(digest);
      if ((await readlink(link).catch(() => undefined)) === target) continue;
      await rm(link, { force: true });
      await symlink(target, link);
    }
  }

  /** The parsed records, as last read. */
  private records(): { byName: Map<string, ModelRecord>; list: ModelRecord[] } {
    return this.cache.value;
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
    const splits = input.splitDigests !== undefined && input.splitDigests.length > 1 ? input.splitDigests : undefined;
    if (splits && splits[0] !== input.modelDigest) throw new InvalidModelFileError("a split model's first part must be its model digest");
    const parts = await Promise.all((splits ?? [input.modelDigest]).map(async (digest) => readGguf(await this.blobs.require(digest))));
    const gguf = splits ? checkSplit(parts) : (parts[0] as GgufFile);
    const manifest: Manifest = {
      schemaVersion: 1,
      model: {
        digest: input.modelDigest,
        size: parts.reduce((sum, part) => sum + part.fileSize, 0),
        ...(splits && { splits: splits.map((digest, i) => ({ digest, size: parts[i]?.fileSize ?? 0 })) }),
      },
      ...(input.template !== undefined && { template: input.template }),
      ...(input.system !== undefined && { system: input.system }),
      ...(input.license !== undefined && { license: input.license }),
      parameters: input.parameters ?? {},
      metadata: modelMetadataFrom(gguf),
    };
    if (splits) await this.link(splits);
    const replaced = this.get(name);
    await this.put(name, manifest);
    if (replaced) await this.release(replaced);
    return this.require(name);
  }

  /** Records a model served by remote endpoints under `name` (replacing any model of that name); nothing is read. */
  async createUpstream(input: CreateUpstreamInput): Promise<ModelRecord> {
    return this.changing(async () => {
      const name = normalizeModelName(input.name);
      const { name: _name, upstream, parameters, ...texts } = input;
      const replaced = this.get(name);
      await this.put(name, { schemaVersion: 1, upstream, ...texts, parameters: parameters ?? {}, metadata: upstreamMetadata(upstream) });
      if (replaced) await this.release(replaced);
      return this.require(name);
    });
  }

  /** Records `destination` as a second name for the model `source`. */
  async copy(source: string, destination: string): Promise<void> {
    return this.changing(() => this.copyNow(source, destination));
  }

  private async copyNow(source: string, destination: string): Promise<void> {
    const from = this.require(source);
    const manifest = (await this.db.get(`SELECT manifest FROM models WHERE ${this.sameName}`, [from.name]))?.manifest;
    if (manifest === undefined) throw new ModelNotFoundError(source);
    const name = normalizeModelName(destination);
    const replaced = this.get(name);
    await this.put(name, manifestSchema.parse(JSON.parse(String(manifest))));
    if (replaced) await this.release(replaced);
  }

  /** Removes the name, then its weights unless another model uses them. */
  async delete(name: string): Promise<void> {
    return this.changing(() => this.deleteNow(name));
  }

  private async deleteNow(name: string): Promise<void> {
    const record = this.require(name);
    await this.cache.write((tx) => tx.run(`DELETE FROM models WHERE ${this.sameName}`, [record.name]));
    await this.release(record);
  }

  /**
   * Deletes a model's blobs (and a split model's links) once no model references them. (Blobs uploaded for a
   * create that has not happened yet are kept.)
   */
  private async release(record: ModelRecord): Promise<void> {
    if (record.upstream) return; // no weights
    for (const digest of record.splitDigests ?? [record.modelDigest]) {
      if (!this.references(digest)) await this.blobs.remove(digest);
    }
    if (record.splitDigests && !this.references(record.modelDigest)) await rm(this.splitDir(record.modelDigest), { recursive: true, force: true });
  }

  private async put(name: string, manifest: Manifest): Promise<void> {
    const json = JSON.stringify(manifest);
    const digest = createHash("sha256").update(json).digest("hex");
    // One name per model whatever its case: the new spelling replaces the old one.
    const conflict = this.db.dialect === "postgres" ? " ((lower(name)))" : "(name)";
    await this.cache.write((tx) =>
      tx.run(
        `INSERT INTO models (name, digest, manifest, modified_at) VALUES (?, ?, ?, ?)
         ON CONFLICT${conflict} DO UPDATE SET name = excluded.name, digest = excluded.digest,
           manifest = excluded.manifest, modified_at = excluded.modified_at`,
        [name, digest, json, Date.now()],
      ),
    );
  }
}

const rowSchema = z.object({ name: z.string(), digest: z.string(), manifest: z.string(), modified_at: z.number() });

/** Every model, parsed and frozen, most recently modified first, and by name (without case). */
async function readRecords(db: SqlExecutor): Promise<{ byName: Map<string, ModelRecord>; list: ModelRecord[] }> {
  const rows = await db.all("SELECT name, digest, manifest, modified_at FROM models ORDER BY modified_at DESC");
  const list = rows.map((row) => deepFreeze(toRecord(rowSchema.parse(row))));
  return { list, byName: new Map(list.map((record) => [nameKey(record.name), record])) };
}

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
    modelDigest: manifest.model?.digest ?? (manifest.upstream ? upstreamDigest(manifest.upstream) : ""),
    ...(manifest.model?.splits && { splitDigests: manifest.model.splits.map((part) => part.digest) }),
    size: manifest.model?.size ?? 0,
    ...(manifest.template !== undefined && { template: manifest.template }),
    ...(manifest.system !== undefined && { system: manifest.system }),
    ...(manifest.license !== undefined && { license: manifest.license }),
    parameters: manifest.parameters,
    metadata: manifest.metadata,
    modifiedAt: new Date(row.modified_at),
    ...(manifest.upstream && { upstream: manifest.upstream }),
  };
}

function parseDigestHex(digest: string): string {
  return parseDigest(digest).slice("sha256:".length);
}

/**
 * The parts of a split GGUF, checked to be one model (`split.count` parts, numbered in order), as one header: the
 * first part's metadata with every part's tensors (so the parameter count covers them all).
 */
function checkSplit(parts: GgufFile[]): GgufFile {
  const first = parts[0] as GgufFile;
  for (const [i, part] of parts.entries()) {
    const count = part.metadata.get("split.count");
    const no = part.metadata.get("split.no");
    if (count !== parts.length || no !== i) {
      throw new InvalidModelFileError(`invalid split GGUF: part ${i + 1} of ${parts.length} says it is part ${typeof no === "number" ? no + 1 : "?"} of ${String(count ?? "?")}`);
    }
  }
  return { ...first, tensors: parts.flatMap((part) => part.tensors) };
}
