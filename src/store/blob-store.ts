import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BlobNotFoundError, DigestMismatchError, InvalidRequestError } from "../domain/errors.js";

const DIGEST = /^sha256[:-]([0-9a-f]{64})$/;
const TEMP_PREFIX = ".partial-";
/**
 * A temp file untouched this long is a crashed write's leftover. A younger one may be a write in progress by another
 * process sharing the folder (replicas on one network blob folder): a live write touches its file with every chunk.
 */
const STALE_TEMP_MS = 15 * 60_000;

/** Parses "sha256:<hex>" (or Ollama's file form "sha256-<hex>") and returns the canonical "sha256:<hex>". */
export function parseDigest(value: string): string {
  const match = DIGEST.exec(value);
  if (!match) throw new InvalidRequestError(`invalid digest "${value}": expected sha256:<64 hex digits>`);
  return `sha256:${match[1]}`;
}

/**
 * Content-addressed file store: each blob lives at `<dir>/sha256-<hex>` and is only ever written through a temp
 * file that is hashed while written, fsynced, verified and then renamed into place. A reader therefore never sees
 * a partial or unverified blob, and a crash leaves at most a temp file, which a later `open` removes once it is stale.
 */
export class BlobStore {
  private constructor(readonly dir: string) {}

  static async open(dir: string, now = Date.now()): Promise<BlobStore> {
    await mkdir(dir, { recursive: true });
    for (const name of await readdir(dir)) {
      if (!name.startsWith(TEMP_PREFIX)) continue;
      const file = path.join(dir, name);
      const modified = await stat(file).then((info) => info.mtimeMs, () => undefined);
      if (modified !== undefined && now - modified >= STALE_TEMP_MS) await rm(file, { force: true });
    }
    return new BlobStore(dir);
  }

  /** The path a blob lives at (whether or not it exists). The digest is validated, so no path escapes `dir`. */
  pathOf(digest: string): string {
    return path.join(this.dir, parseDigest(digest).replace(":", "-"));
  }

  async has(digest: string): Promise<boolean> {
    return (await this.sizeOf(digest)) !== undefined;
  }

  async sizeOf(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.pathOf(digest))).size;
    } catch {
      return undefined;
    }
  }

  /** Like pathOf, but throws BlobNotFoundError when the blob is absent. */
  async require(digest: string): Promise<string> {
    if (!(await this.has(digest))) throw new BlobNotFoundError(parseDigest(digest));
    return this.pathOf(digest);
  }

  /**
   * Stores a stream's bytes. When `expected` is given and the bytes hash to something else, nothing is stored and
   * DigestMismatchError is thrown. Resolves to the digest and size of what was stored.
   */
  async write(source: Readable, expected?: string, signal?: AbortSignal): Promise<{ digest: string; size: number }> {
    const want = expected === undefined ? undefined : parseDigest(expected);
    const temp = path.join(this.dir, `${TEMP_PREFIX}${randomBytes(8).toString("hex")}`);
    const hash = createHash("sha256");
    let size = 0;
    const hasher = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(source, hasher, createWriteStream(temp, { flags: "wx" }), signal ? { signal } : {});
      const digest = `sha256:${hash.digest("hex")}`;
      if (want !== undefined && digest !== want) throw new DigestMismatchError(want, digest);
      await fsync(temp);
      await rename(temp, this.pathOf(digest));
      await fsyncDir(this.dir);
      return { digest, size };
    } finally {
      await rm(temp, { force: true });
    }
  }

  /** Copies a local file into the store. */
  async importFile(file: string, signal?: AbortSignal): Promise<{ digest: string; size: number }> {
    return this.write(createReadStream(file), undefined, signal);
  }

  /**
   * Moves a file whose bytes were already verified to hash to `digest` (a finished download) into the store, by
   * rename (on another file system it is copied, and hashed again on the way). The file is flushed before the rename
   * and the directory after it, so the blob survives a crash. When the blob is already stored, the file is just
   * removed.
   */
  async adopt(file: string, digest: string): Promise<void> {
    const target = this.pathOf(digest);
    if (!(await this.has(digest))) {
      await fsync(file);
      try {
        await rename(file, target);
        await fsyncDir(this.dir);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
        await this.write(createReadStream(file), digest);
      }
    }
    await rm(file, { force: true });
  }

  /**
   * Hashes a file on the store's file system (a quantization's output, a link to a file of the Hugging Face cache)
   * and adopts it under that digest; with `expected`, only if it is that (DigestMismatchError otherwise, the file left
   * where it is). Resolves to the digest.
   */
  async adoptHashed(file: string, options: { expected?: string; signal?: AbortSignal; onProgress?: (bytes: number) => void } = {}): Promise<string> {
    const hash = createHash("sha256");
    const source = createReadStream(file);
    let bytes = 0;
    if (options.onProgress) source.on("data", (chunk) => options.onProgress?.((bytes += chunk.length)));
    await pipeline(source, hash, options.signal ? { signal: options.signal } : {});
    const digest = `sha256:${hash.digest("hex")}`;
    const want = options.expected === undefined ? undefined : parseDigest(options.expected);
    if (want !== undefined && digest !== want) throw new DigestMismatchError(want, digest);
    await this.adopt(file, digest);
    return digest;
  }

  async remove(digest: string): Promise<void> {
    await rm(this.pathOf(digest), { force: true });
  }

  async list(): Promise<string[]> {
    const names = await readdir(this.dir);
    return names.filter((n) => DIGEST.test(n)).map((n) => n.replace("-", ":"));
  }
}

async function fsync(file: string): Promise<void> {
  const handle = await open(file, "r+");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } catch {
    // Some file systems cannot sync a directory; the rename is still atomic.
  } finally {
    await handle.close();
  }
}
