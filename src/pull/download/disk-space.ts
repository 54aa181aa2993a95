import { formatBytes } from "../../domain/byte-size.js";
import { InsufficientStorageError } from "../../domain/errors.js";
import { freeBytes } from "../../store/disk-space.js";

/** Room kept free beyond the bytes still to download (the state file, file system overhead). */
const MARGIN_BYTES = 1 << 20;

/** Throws InsufficientStorageError when `dir`'s file system cannot take `needed` more bytes (and a small margin). */
export async function ensureFreeSpace(dir: string, needed: number): Promise<void> {
  if (needed <= 0) return;
  const free = await freeBytes(dir);
  const wanted = needed + MARGIN_BYTES;
  if (free < wanted) throw new InsufficientStorageError(`the download needs ${formatBytes(wanted)}, ${formatBytes(free)} free under ${dir}`);
}

/** A full disk (ENOSPC, or a quota: EDQUOT) becomes InsufficientStorageError; anything else is returned as it is. */
export function toStorageError(error: unknown, file: string): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code !== "ENOSPC" && code !== "EDQUOT") return error;
  return new InsufficientStorageError(`the disk is full: cannot write ${file} (the partial download is kept; free some space and pull again)`, { cause: error });
}
