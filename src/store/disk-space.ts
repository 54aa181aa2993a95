import { statfs } from "node:fs/promises";

/** Bytes the current user may still write on the file system that holds `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const stats = await statfs(dir);
  return stats.bavail * stats.bsize;
}
