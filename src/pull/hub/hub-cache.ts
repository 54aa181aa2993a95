import { readdir, stat } from "node:fs/promises";
import path from "node:path";

/**
 * Finds a file in the local Hugging Face cache (HF_HUB_CACHE, the layout huggingface_hub and llama.cpp write:
 * `models--{owner}--{name}/blobs/<sha256>` for LFS files), so that a pull imports it instead of downloading it.
 * The repository's own folder is looked in first, then every other (the same bytes may be cached under another
 * repository). Only a file of the right size is returned; the caller verifies its sha256 while importing it.
 */
export async function findInHubCache(cacheDir: string, repo: string | undefined, sha256Hex: string, size: number): Promise<string | undefined> {
  const own = repo === undefined ? [] : [`models--${repo.replace("/", "--")}`];
  const others = (await readdir(cacheDir).catch(() => [] as string[])).filter((name) => name.startsWith("models--") && !own.includes(name));
  for (const folder of [...own, ...others]) {
    const file = path.join(cacheDir, folder, "blobs", sha256Hex);
    const info = await stat(file).catch(() => undefined);
    if (info?.isFile() && info.size === size) return file;
  }
  return undefined;
}
