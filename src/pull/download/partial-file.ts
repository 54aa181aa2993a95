import { open, readFile, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { toStorageError } from "./disk-space.js";
import type { CheckedRequest, DownloadFiles } from "./request.js";

/** A byte range [start, end) of the file, and how many of its first bytes are written to the data file. */
export interface Part {
  readonly start: number;
  readonly end: number;
  written: number;
}

interface SavedState {
  version: 1;
  size: number;
  sha256: string | null;
  gitBlobSha1: string | null;
  /** [start, end, written] per part. */
  parts: [number, number, number][];
}

/** Bytes already written, over all parts (0 when there is no usable saved state). */
export function writtenBytes(parts: readonly Part[] | undefined): number {
  return (parts ?? []).reduce((sum, part) => sum + part.written, 0);
}

/** Cuts a file into parts of `partSize` bytes (the last one shorter). */
export function layoutParts(size: number, partSize: number): Part[] {
  const parts: Part[] = [];
  for (let start = 0; start < size; start += partSize) parts.push({ start, end: Math.min(size, start + partSize), written: 0 });
  return parts;
}

/**
 * The data file of a download in progress and its saved part layout. Progress is saved so that it never claims
 * bytes that are not on disk: the data is flushed (fdatasync) before the layout, taken before the flush, is written
 * to a temp file and renamed over the old one. A process killed at any point resumes from the last save.
 */
export class PartialFile {
  private queued: Promise<void> | undefined;
  private lastSaved = "";
  private saved: Promise<void> = Promise.resolve();

  private constructor(
    readonly files: DownloadFiles,
    private readonly request: CheckedRequest,
    /** The data file, for positional writes. */
    readonly handle: FileHandle,
    readonly parts: Part[],
  ) {}

  /**
   * The saved parts of an earlier download of this file, when its state matches the request (size, hashes) and its
   * data file is there at full size; undefined otherwise (the download then starts over).
   */
  static async readSaved(files: DownloadFiles, request: CheckedRequest): Promise<Part[] | undefined> {
    let state: SavedState;
    try {
      state = JSON.parse(await readFile(files.state, "utf8")) as SavedState;
      if ((await stat(files.data)).size !== request.size) return undefined;
    } catch {
      return undefined;
    }
    const matches =
      state.version === 1 &&
      state.size === request.size &&
      state.sha256 === (request.sha256 ?? null) &&
      state.gitBlobSha1 === (request.gitBlobSha1 ?? null) &&
      Array.isArray(state.parts) &&
      state.parts.every((entry) => Array.isArray(entry) && entry.length === 3);
    if (!matches) return undefined;
    const parts = state.parts.map(([start, end, written]) => ({ start, end, written }));
    return isLayoutOf(parts, request.size) ? parts : undefined;
  }

  /** Opens the data file to continue `saved`, or, without it, creates a fresh sparse one cut into parts. */
  static async open(files: DownloadFiles, request: CheckedRequest, saved: Part[] | undefined, partSize: number): Promise<PartialFile> {
    if (saved) {
      try {
        return new PartialFile(files, request, await open(files.data, "r+"), saved);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
    }
    try {
      await removeDownloadFiles(files);
      const handle = await open(files.data, "w+");
      const file = new PartialFile(files, request, handle, layoutParts(request.size, partSize));
      try {
        await handle.truncate(request.size);
        await file.checkpoint();
      } catch (error) {
        await handle.close();
        throw error;
      }
      return file;
    } catch (error) {
      throw toStorageError(error, files.data);
    }
  }

  written(): number {
    return writtenBytes(this.parts);
  }

  /** Forgets all progress: the file is fetched again from byte 0 as one part (a server that ignores Range). */
  restartAsOnePart(): void {
    this.parts.splice(0, this.parts.length, ...layoutParts(this.request.size, Math.max(1, this.request.size)));
  }

  /**
   * Saves the progress: flushes the data, then writes the layout as it was before the flush. Calls made while a
   * save runs share the one queued after it.
   */
  checkpoint(): Promise<void> {
    this.queued ??= this.saved.then(() => {
      this.queued = undefined;
      return this.save();
    });
    this.saved = this.queued.catch(() => undefined);
    return this.queued;
  }

  /** Saves the progress one last time (best effort) and closes the data file, keeping it for a resume. */
  async close(): Promise<void> {
    await this.checkpoint().catch(() => undefined);
    await this.handle.close();
  }

  /** The hashes verified: flushes and closes the data file, renames it to its verified name, drops the state. */
  async finish(): Promise<string> {
    await this.saved;
    try {
      await this.handle.sync();
    } finally {
      await this.handle.close();
    }
    await rename(this.files.data, this.files.verified);
    await rm(this.files.state, { force: true });
    return this.files.verified;
  }

  private async save(): Promise<void> {
    const state: SavedState = {
      version: 1,
      size: this.request.size,
      sha256: this.request.sha256 ?? null,
      gitBlobSha1: this.request.gitBlobSha1 ?? null,
      parts: this.parts.map((part) => [part.start, part.end, part.written]),
    };
    const text = JSON.stringify(state);
    if (text === this.lastSaved) return;
    const temp = `${this.files.state}.tmp`;
    try {
      await this.handle.datasync();
      const out = await open(temp, "w");
      try {
        await out.writeFile(text);
        await out.sync();
      } finally {
        await out.close();
      }
      await rename(temp, this.files.state);
      this.lastSaved = text;
    } catch (error) {
      throw toStorageError(error, this.files.state);
    }
  }
}

/** Removes every file of a download (data, state, verified data). */
export async function removeDownloadFiles(files: DownloadFiles): Promise<void> {
  for (const file of [files.data, files.state, `${files.state}.tmp`, files.verified]) await rm(file, { force: true });
}

function isLayoutOf(parts: Part[], size: number): boolean {
  let next = 0;
  for (const { start, end, written } of parts) {
    const valid = [start, end, written].every(Number.isSafeInteger) && start === next && end > start && written >= 0 && written <= end - start;
    if (!valid) return false;
    next = end;
  }
  return next === size;
}
