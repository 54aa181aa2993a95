import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { link, rm } from "node:fs/promises";
import path from "node:path";
import type { JobFile } from "../domain/job.js";
import type { JobProgress } from "../jobs/jobs.js";
import type { Quantizer } from "../quantize/quantizer.js";
import type { ModelStore } from "../store/model-store.js";
import type { Downloader, DownloadRequest } from "./download/downloader.js";
import { findInHubCache } from "./hub/hub-cache.js";
import { HubClient, type HubSettings } from "./hub/hub-client.js";
import type { PlannedFile, PullPlan } from "./pull-plan.js";

/** What carrying out a pull needs. */
export interface PullExecutor {
  store: ModelStore;
  downloader: Downloader;
  quantizer: Pick<Quantizer, "quantize">;
  hub: HubSettings;
  /** HF_HUB_CACHE (else $HF_HOME/hub): verified files found there are imported instead of downloaded. */
  hubCache: string;
}

/** The files of a plan as a job shows them before anything is fetched. */
export function jobFilesOf(plan: PullPlan): JobFile[] {
  return plan.files.map((file) => ({ name: file.name, digest: file.sha256 ?? "", total: file.size, completed: 0, state: "pending" }));
}

/**
 * Carries out a plan: each file is taken from the store when it is there already, else imported from the local
 * Hugging Face cache (verified), else downloaded (resumable, verified); then quantized when the plan says so, and
 * the model recorded under its name (replacing a model of that name). Interrupted, it resumes where it stopped.
 */
export async function executePull(plan: PullPlan, executor: PullExecutor, progress: JobProgress, signal: AbortSignal): Promise<void> {
  const headers = plan.files.some((file) => file.auth === "hub") ? (await HubClient.open(executor.hub)).authHeaders() : {};
  const digests: string[] = [];
  for (const [index, file] of plan.files.entries()) {
    signal.throwIfAborted();
    digests.push(await fetchFile(file, index, executor, progress, signal, file.auth === "hub" ? headers : {}));
  }
  progress.status("verifying sha256 digest");
  let modelDigests = digests;
  if (plan.quantizeTo) {
    progress.status(`quantizing ${plan.choice.quantization ?? "the"} model to ${plan.quantizeTo}`);
    const { digest } = await executor.quantizer.quantize(digests[0] ?? "", plan.quantizeTo, { signal, onProgress: (p) => progress.quantize(p) });
    modelDigests = [digest];
  }
  progress.status("writing manifest");
  await executor.store.create({
    name: plan.name,
    modelDigest: modelDigests[0] ?? "",
    ...(modelDigests.length > 1 && { splitDigests: modelDigests }),
    ...(plan.template !== undefined && { template: plan.template }),
    ...(plan.system !== undefined && { system: plan.system }),
    ...(plan.license !== undefined && { license: plan.license }),
    ...(plan.parameters !== undefined && { parameters: plan.parameters }),
  });
  if (plan.quantizeTo) {
    progress.status("removing unused layers");
    for (const digest of digests) if (!executor.store.references(digest)) await executor.store.blobs.remove(digest);
  }
}

/** Removes what an interrupted plan left on disk (a cancelled pull). */
export async function discardPull(plan: PullPlan, downloader: Downloader): Promise<void> {
  for (const file of plan.files) await downloader.discard(downloadRequest(file, {}));
}

/** Puts one file in the blob store; resolves to its digest. */
async function fetchFile(file: PlannedFile, index: number, executor: PullExecutor, progress: JobProgress, signal: AbortSignal, headers: Record<string, string>): Promise<string> {
  const { store } = executor;
  if (file.sha256 && (await store.blobs.sizeOf(file.sha256)) === file.size) {
    progress.file(index, { completed: file.size, state: "done", source: "store" });
    return file.sha256;
  }
  if (file.sha256 && file.hubRepo !== undefined) {
    const cached = await findInHubCache(executor.hubCache, file.hubRepo, file.sha256.slice("sha256:".length), file.size);
    if (cached) {
      progress.notice(`${file.name}: found in the local Hugging Face cache, importing it`);
      progress.file(index, { state: "verifying", source: "hf-cache" });
      try {
        await importVerified(store, cached, file.sha256, (done) => progress.file(index, { completed: done }), signal);
        progress.file(index, { completed: file.size, state: "done" });
        return file.sha256;
      } catch (error) {
        signal.throwIfAborted();
        progress.notice(`${file.name}: the copy in the Hugging Face cache could not be imported (${error instanceof Error ? error.message : String(error)}); downloading it instead`);
      }
    }
  }
  const request = downloadRequest(file, headers);
  progress.file(index, { state: "downloading", source: "download", completed: await executor.downloader.partialBytes(request) });
  const { path: verified, digest } = await executor.downloader.download(request, {
    signal,
    onProgress: ({ completed }) => progress.file(index, { completed }),
    onNotice: (message) => progress.notice(`${file.name}: ${message}`),
  });
  await store.blobs.adopt(verified, digest);
  progress.file(index, { completed: file.size, state: "done", digest });
  return digest;
}

function downloadRequest(file: PlannedFile, headers: Record<string, string>): DownloadRequest {
  return {
    url: file.url,
    headers,
    size: file.size,
    ...(file.sha256 !== undefined && { sha256: file.sha256 }),
    ...(file.gitBlobSha1 !== undefined && { gitBlobSha1: file.gitBlobSha1 }),
  };
}

/**
 * Brings a file of the Hugging Face cache into the blob store: hard-linked when both are on one filesystem (no
 * copy: the cache never changes a file), else copied; either way hashed and installed only if it is `digest`.
 */
async function importVerified(store: ModelStore, file: string, digest: string, onProgress: (done: number) => void, signal: AbortSignal): Promise<void> {
  const temp = path.join(path.dirname(store.blobs.pathOf(digest)), `.partial-import-${randomBytes(6).toString("hex")}`);
  try {
    await link(file, temp);
  } catch {
    await store.blobs.write(counting(file, onProgress), digest, signal);
    return;
  }
  try {
    await store.blobs.adoptHashed(temp, { expected: digest, signal, onProgress });
  } finally {
    await rm(temp, { force: true });
  }
}

function counting(file: string, onProgress: (done: number) => void) {
  let done = 0;
  const stream = createReadStream(file);
  stream.on("data", (chunk) => onProgress((done += chunk.length)));
  return stream;
}
