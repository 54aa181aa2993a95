import type { FastifyInstance } from "fastify";
import type { Config } from "./config/schema.js";
import type { Engine } from "./engine/engine.js";
import { LlamaCppEngine } from "./engine/llama-cpp/llama-cpp-engine.js";
import { Scheduler } from "./scheduler/scheduler.js";
import { createHttpServer } from "./server/http.js";
import type { ModelStore } from "./store/model-store.js";
import { openModelStore } from "./store/open-store.js";

/** How long shutdown waits for in-flight requests before closing their sockets. */
const SHUTDOWN_GRACE_MS = 5000;

/** Everything a request handler may use; built once by buildApp and passed down. */
export interface Services {
  config: Config;
  store: ModelStore;
  scheduler: Scheduler;
}

export interface App {
  http: FastifyInstance;
  services: Services;
  /** Stops accepting requests, unloads every model and closes the database. */
  close(): Promise<void>;
}

/** The composition root: builds every service and the HTTP server, without listening. */
export async function buildApp(config: Config, overrides: { engine?: Engine } = {}): Promise<App> {
  const { store, close: closeStore } = await openModelStore(config.home);
  const engine = overrides.engine ?? new LlamaCppEngine({ gpu: config.gpu });
  const scheduler = new Scheduler(engine, store.blobs, {
    defaultContextSize: config.contextLength,
    defaultKeepAliveMs: config.keepAliveMs,
    slotsPerModel: config.numParallel,
    threads: config.threads,
    maxQueue: config.maxQueue,
  });
  const services: Services = { config, store, scheduler };
  const http = await createHttpServer(services);
  return {
    http,
    services,
    async close() {
      // Let in-flight requests finish for a grace period, then drop every socket: some clients (undici) keep
      // connections open that never carry a request, and Node would wait for them until its headers timeout.
      const grace = setTimeout(() => http.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
      grace.unref();
      await http.close();
      clearTimeout(grace);
      await scheduler.close();
      closeStore();
    },
  };
}
