/**
 * The internet of the pull tests, in one call: a CDN, a Hugging Face Hub and an Ollama registry on loopback (the
 * real ones cannot be reached here), serving the standard pull fixtures (test/fixtures/pull-fixtures.ts).
 *
 *   const internet = await startFakeInternet();
 *   const server = await startServer({ config: internet.config });   // HF_ENDPOINT and AI_SERVER_OLLAMA_REGISTRY
 *   …
 *   await internet.close();
 */
import { ensurePullFixtures, hubTokens, pullRegistryModels, pullRepos, type PullFixturePaths } from "../fixtures/pull-fixtures.js";
import { FakeCdn, type FakeCdnOptions } from "./fake-cdn.js";
import { FakeHub, type FakeHubOptions } from "./fake-hub.js";
import { FakeRegistry } from "./fake-registry.js";

export interface FakeInternet {
  cdn: FakeCdn;
  hub: FakeHub;
  registry: FakeRegistry;
  hubUrl: string;
  registryUrl: string;
  fixtures: PullFixturePaths;
  /** Settings that point a test server at the fakes: `startServer({ config: { ...internet.config, … } })`. */
  config: { hfEndpoint: string; ollamaRegistry: string };
  close(): Promise<void>;
}

export interface FakeInternetOptions {
  /** Where the fixtures are generated (default: the shared fixture directory). */
  fixtureDir?: string;
  /** Register the standard repos, users and registry models (default true). */
  standard?: boolean;
  cdn?: FakeCdnOptions;
  hub?: Omit<FakeHubOptions, "cdn">;
  /** See FakeRegistry.redirectThreshold. */
  registryRedirectThreshold?: number;
}

/** Starts the CDN, the Hub and the registry (each on its own port), with the standard content unless told not to. */
export async function startFakeInternet(options: FakeInternetOptions = {}): Promise<FakeInternet> {
  const fixtures = await ensurePullFixtures(options.fixtureDir);
  const standard = options.standard ?? true;
  const cdn = await FakeCdn.start(options.cdn);
  const hub = await FakeHub.start({
    ...options.hub,
    cdn,
    repos: [...(standard ? Object.values(pullRepos(fixtures)) : []), ...(options.hub?.repos ?? [])],
    tokens: [...(standard ? hubTokens() : []), ...(options.hub?.tokens ?? [])],
  });
  const registry = await FakeRegistry.start({
    cdn,
    models: standard ? pullRegistryModels(fixtures) : [],
    ...(options.registryRedirectThreshold !== undefined && { redirectThreshold: options.registryRedirectThreshold }),
  });
  return {
    cdn,
    hub,
    registry,
    hubUrl: hub.url,
    registryUrl: registry.url,
    fixtures,
    config: { hfEndpoint: hub.url, ollamaRegistry: registry.url },
    async close() {
      await Promise.all([hub.close(), registry.close(), cdn.close()]);
    },
  };
}
