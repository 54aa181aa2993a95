import path from "node:path";
import { UpstreamError } from "../../domain/errors.js";
import type { DownloadRequest } from "./downloader.js";

/** A request whose hashes and size were checked, with the key its partial data is stored under. */
export interface CheckedRequest extends DownloadRequest {
  /** "sha256-<hex>", or "gitblob-<hex>" when only the git blob id is known. */
  readonly key: string;
}

/** The files a download keeps in the downloads directory. */
export interface DownloadFiles {
  /** The bytes, preallocated (sparse) to the full size. */
  readonly data: string;
  /** The part layout and each part's written bytes (JSON, replaced atomically). */
  readonly state: string;
  /** The data file's name once its hashes verified. */
  readonly verified: string;
}

const SHA256 = /^sha256:([0-9a-f]{64})$/;
const SHA1 = /^[0-9a-f]{40}$/;

/**
 * Validates what the caller expects of the file. The hashes come from upstream metadata (a Hub file tree, a
 * registry manifest), so a malformed one is the upstream's answer being unusable: UpstreamError.
 */
export function checkRequest(request: DownloadRequest): CheckedRequest {
  if (!Number.isSafeInteger(request.size) || request.size < 0) throw new UpstreamError(`invalid size ${request.size} for ${request.url}`);
  if (request.sha256 !== undefined && !SHA256.test(request.sha256)) throw new UpstreamError(`invalid sha256 "${request.sha256}" for ${request.url}`);
  if (request.gitBlobSha1 !== undefined && !SHA1.test(request.gitBlobSha1)) throw new UpstreamError(`invalid git blob id "${request.gitBlobSha1}" for ${request.url}`);
  const key = request.sha256 !== undefined ? request.sha256.replace(":", "-") : request.gitBlobSha1 !== undefined ? `gitblob-${request.gitBlobSha1}` : undefined;
  if (key === undefined) throw new UpstreamError(`no sha256 or git blob id to verify ${request.url} with`);
  return { ...request, key };
}

/** Where the download of `request` keeps its files under `dir`. */
export function downloadFiles(dir: string, request: CheckedRequest): DownloadFiles {
  const base = path.join(dir, request.key);
  return { data: `${base}.partial`, state: `${base}.parts.json`, verified: `${base}.verified` };
}

/** What is wrong with the computed hashes, or undefined when they match what the request expects. */
export function hashMismatch(request: CheckedRequest, digests: { sha256: string; gitBlobSha1?: string | undefined }): string | undefined {
  if (request.sha256 !== undefined && digests.sha256 !== request.sha256) return `sha256 mismatch: expected ${request.sha256}, got ${digests.sha256}`;
  if (request.gitBlobSha1 !== undefined && digests.gitBlobSha1 !== request.gitBlobSha1) {
    return `git blob id mismatch: expected ${request.gitBlobSha1}, got ${digests.gitBlobSha1 ?? "none"}`;
  }
  return undefined;
}
