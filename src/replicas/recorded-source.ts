import type { Job } from "../domain/job.js";
import type { Downloader } from "../pull/download/downloader.js";
import type { PlannedFile, PullPlan } from "../pull/pull-plan.js";
import type { BlobStore } from "../store/blob-store.js";
import { SourceRefusal, type WeightsSource } from "./weights-source.js";

/** A pull job as stored: what it did, and the plan it carried out (files with their URLs and hashes). */
export interface RecordedPull {
  job: Job;
  plan?: PullPlan;
}

/** What re-downloading a recorded file needs. */
export interface RecordedSourceSettings {
  blobs: BlobStore;
  /** The pulls' own downloader: ranged, resumable, sha256-verified; a file already downloading is shared. */
  downloader: Downloader;
  /** The headers a file's requests carry (the Hub's token for `auth: "hub"`, read when asked: never stored). */
  authHeaders: (auth: PlannedFile["auth"]) => Promise<Record<string, string>>;
}

/**
 * Where the blob `digest` came from, by the finished pull jobs that downloaded it: the Hub or registry file of each
 * (the job of `model` first, then any other that fetched the same bytes, as a copy of it would have), or, when there
 * is none, why (a model made from uploaded files, or quantized here: no file upstream has those bytes).
 */
export function recordedSources(digest: string, model: string, pulls: readonly RecordedPull[], settings: RecordedSourceSettings): { sources: WeightsSource[]; none?: string } {
  const sameModel = (pull: RecordedPull): boolean => pull.job.model.toLowerCase() === model.toLowerCase();
  const finished = pulls.filter((pull) => pull.job.state === "succeeded" && pull.plan !== undefined);
  const ordered = [...finished.filter(sameModel), ...finished.filter((pull) => !sameModel(pull))];
  const sources: WeightsSource[] = [];
  const urls = new Set<string>();
  for (const { job, plan } of ordered) {
    for (const [index, file] of (plan?.files ?? []).entries()) {
      if ((file.sha256 !== digest && job.files[index]?.digest !== digest) || urls.has(file.url)) continue;
      urls.add(file.url);
      sources.push(new RecordedSource(job, file, digest, settings));
    }
  }
  if (sources.length > 0) return { sources };
  const quantized = finished.find((pull) => sameModel(pull) && pull.plan?.quantizeTo !== undefined);
  if (quantized?.plan?.quantizeTo !== undefined) {
    return { sources, none: `pull job ${quantized.job.id} quantized ${quantized.plan.choice.file} to ${quantized.plan.quantizeTo} on the replica that ran it: no file upstream has those bytes, only a replica that has the result` };
  }
  return { sources, none: "no finished pull job recorded where these weights came from (a model made from uploaded files, or its job was removed)" };
}

/** A file a finished pull downloaded, downloaded again (verified against the digest the model names). */
class RecordedSource implements WeightsSource {
  readonly label: string;

  constructor(
    job: Job,
    private readonly file: PlannedFile,
    digest: string,
    private readonly settings: RecordedSourceSettings,
  ) {
    const origin = job.choice ? `${job.choice.source === "huggingface" ? "the Hub" : "the registry"}: ${job.choice.repo}` : job.model;
    this.label = `the source of pull job ${job.id} (${origin}, ${file.name === digest ? "model layer" : file.name})`;
  }

  async fetch(digest: string, progress: (bytes: number, total: number | undefined) => void, signal: AbortSignal): Promise<void> {
    const { file, settings } = this;
    const request = {
      url: file.url,
      headers: await settings.authHeaders(file.auth),
      size: file.size,
      sha256: digest,
      ...(file.gitBlobSha1 !== undefined && { gitBlobSha1: file.gitBlobSha1 }),
    };
    const { path, digest: verified } = await settings.downloader.download(request, { signal, onProgress: ({ completed, total }) => progress(completed, total) });
    if (verified !== digest) throw new SourceRefusal(`the file now hashes to ${verified}`); // the downloader checked it; kept as a guard
    await settings.blobs.adopt(path, digest);
  }
}
