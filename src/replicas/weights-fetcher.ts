import { stat } from "node:fs/promises";
import { ServerShuttingDownError, WeightsUnavailableError } from "../domain/errors.js";
import type { ModelRecord } from "../domain/model.js";
import { raceAbort } from "../scheduler/helpers.js";
import type { BlobStore } from "../store/blob-store.js";
import { FetchProgress, type FetchLog } from "./fetch-progress.js";
import { reasonOf, SourceRefusal, type WeightsSource } from "./weights-source.js";

/** What the fetcher works with. */
export interface WeightsFetcherOptions {
  blobs: BlobStore;
  /** The peer replicas, in the order they are asked (AI_SERVER_PEERS). */
  peers: readonly WeightsSource[];
  /** The sources a finished pull recorded for these bytes, or why there are none (asked only when no peer had them). */
  recorded: (digest: string, model: string) => Promise<{ sources: WeightsSource[]; none?: string }>;
  /** The model stored under a name now (a draft model's weights come with its model's). */
  lookup: (name: string) => ModelRecord | undefined;
  /** The file an engine loads for these weights (for a split model: the link to its first part). */
  modelPath: (modelDigest: string) => string;
  /** Makes the link directories of split models (llama.cpp finds a split model's parts by name). */
  linkSplits: () => Promise<void>;
  log: FetchLog;
}

/**
 * Makes sure a model's weights are on this replica before it loads. Each replica keeps its own blob store, so a
 * model created on another replica (the shared database names it everywhere) may have no weights here yet: each
 * missing blob (every part of a split model, and a draft model's) is fetched from the first peer that has it, else
 * from the source its pull job downloaded it from, always through a verifying write (a wrong hash is discarded and
 * the next source tried). Concurrent requests for one blob share one fetch; a request that leaves stops waiting, but
 * the fetch goes on (the weights are wanted); only `close` (the shutdown) stops fetches.
 */
export class WeightsFetcher {
  private readonly fetches = new Map<string, Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(private readonly options: WeightsFetcherOptions) {}

  /**
   * Resolves once every blob `record` needs is stored here (at once when they are). Rejects with
   * WeightsUnavailableError (every source's reason) when one cannot be had, RequestCancelledError when `signal`
   * aborts first, ServerShuttingDownError when the server stops meanwhile.
   */
  async ensure(record: ModelRecord, signal: AbortSignal): Promise<void> {
    for (const model of this.modelsOf(record)) {
      for (const digest of model.splitDigests ?? [model.modelDigest]) {
        if (await this.options.blobs.has(digest)) continue;
        await raceAbort(this.shared(digest, model.name), signal); // the fetch goes on without this request
      }
      if (model.splitDigests && !(await exists(this.options.modelPath(model.modelDigest)))) await this.options.linkSplits();
    }
  }

  /**
   * Stops every fetch; their waiters get ServerShuttingDownError. Nothing unverified enters the blob store (a
   * download from a recorded source keeps its partial file under models/downloads, to resume).
   */
  async close(): Promise<void> {
    this.stopping.abort(new ServerShuttingDownError("the server is shutting down: fetching the weights stopped"));
    await Promise.allSettled([...this.fetches.values()]);
  }

  /** `record` and its draft model, when it names one: the models whose weights it loads. Upstream models have none. */
  private modelsOf(record: ModelRecord): ModelRecord[] {
    const draftName = record.parameters.draft_model;
    const draft = typeof draftName === "string" && draftName !== "" ? this.options.lookup(draftName) : undefined;
    return [record, ...(draft ? [draft] : [])].filter((model) => model.upstream === undefined);
  }

  /** The fetch of `digest` under way, or a new one. */
  private shared(digest: string, model: string): Promise<void> {
    let fetch = this.fetches.get(digest);
    if (!fetch) {
      fetch = this.fetch(digest, model).finally(() => this.fetches.delete(digest));
      fetch.catch(() => undefined); // every waiter may have left: the outcome is logged, not lost
      this.fetches.set(digest, fetch);
    }
    return fetch;
  }

  /** Peers first, in order, then the recorded sources; the first that stores a verified blob ends it. */
  private async fetch(digest: string, model: string): Promise<void> {
    const signal = this.stopping.signal;
    const what = `weights ${digest} of model "${model}"`;
    const reasons: string[] = [];
    if (this.options.peers.length === 0) reasons.push("no peers are configured (AI_SERVER_PEERS)");
    if (await this.tryEach(this.options.peers, digest, what, reasons)) return;
    let recorded: { sources: WeightsSource[]; none?: string };
    try {
      recorded = await this.options.recorded(digest, model);
    } catch (error) {
      recorded = { sources: [], none: `the pull jobs could not be read: ${reasonOf(error)}` };
    }
    if (recorded.none !== undefined) reasons.push(recorded.none);
    if (await this.tryEach(recorded.sources, digest, what, reasons)) return;
    signal.throwIfAborted();
    const error = new WeightsUnavailableError(`the ${what} are not on this server and could not be fetched: ${reasons.join("; ")}`);
    this.options.log("warn", error.message);
    throw error;
  }

  /** Tries each source until one stores the blob (true); adds each failure's reason. Throws when stopped. */
  private async tryEach(sources: readonly WeightsSource[], digest: string, what: string, reasons: string[]): Promise<boolean> {
    const signal = this.stopping.signal;
    for (const source of sources) {
      signal.throwIfAborted();
      const progress = new FetchProgress(what, source.label, this.options.log);
      let received = 0;
      try {
        await source.fetch(digest, (bytes, total) => progress.update((received = bytes), total), signal);
      } catch (error) {
        signal.throwIfAborted();
        const reason = reasonOf(error);
        progress.failed(reason, error instanceof SourceRefusal && error.quiet);
        reasons.push(`${source.label}: ${reason}`);
        continue;
      }
      progress.done((await this.options.blobs.sizeOf(digest)) ?? received);
      return true;
    }
    return false;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}
