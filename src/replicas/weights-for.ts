import type { Config } from "../config/schema.js";
import type { Downloader } from "../pull/download/downloader.js";
import { HubClient } from "../pull/hub/hub-client.js";
import { hubSettingsOf } from "../pull/pull-work.js";
import type { ModelStore } from "../store/model-store.js";
import type { FetchLog } from "./fetch-progress.js";
import { PeerSource } from "./peer-source.js";
import { recordedSources, type RecordedPull } from "./recorded-source.js";
import { WeightsFetcher } from "./weights-fetcher.js";

/** What the composition root hands over. */
export interface WeightsDependencies {
  store: ModelStore;
  downloader: Downloader;
  /** The pull jobs as stored, with their plans (read only when no peer had a blob). */
  pulls: () => Promise<readonly RecordedPull[]> | readonly RecordedPull[];
  log: FetchLog;
}

/**
 * The WeightsFetcher of a server, from its settings: AI_SERVER_PEERS asked in order with AI_SERVER_PEER_KEY (else
 * AI_SERVER_ADMIN_KEY), a dropped transfer after AI_SERVER_PULL_STALL_TIMEOUT without a byte; then the recorded
 * sources, downloaded by the pulls' own downloader with the Hub's token.
 */
export function weightsFetcherFor(config: Config, { store, downloader, pulls, log }: WeightsDependencies): WeightsFetcher {
  const key = config.peerKey !== "" ? config.peerKey : config.adminKey;
  const peers = config.peers.map((base) => new PeerSource(base, store.blobs, { ...(key !== "" && { key }), stallTimeoutMs: config.pullStallTimeoutMs }));
  const hub = hubSettingsOf(config);
  const settings = {
    blobs: store.blobs,
    downloader,
    authHeaders: async (auth: "hub" | "none") => (auth === "hub" ? (await HubClient.open(hub)).authHeaders() : {}),
  };
  return new WeightsFetcher({
    blobs: store.blobs,
    peers,
    recorded: async (digest, model) => recordedSources(digest, model, await pulls(), settings),
    lookup: (name) => store.get(name),
    modelPath: (digest) => store.modelPath(digest),
    linkSplits: () => store.linkSplits(),
    log,
  });
}
