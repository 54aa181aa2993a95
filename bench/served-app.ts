import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { buildApp, type App } from "../src/app.js";
import type { Config } from "../src/config/schema.js";
import type { ModelStore } from "../src/store/model-store.js";

/** The real app listening on 127.0.0.1:`port`, in a throw-away home that `close` removes. */
export interface ServedApp {
  app: App;
  port: number;
  close(): Promise<void>;
}

/** Builds the app in a fresh home (config.home is replaced), lets `fill` put models in its store, and listens. */
export async function serveApp(config: Config, fill: (store: ModelStore) => Promise<void>): Promise<ServedApp> {
  const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-bench-"));
  const app = await buildApp({ ...config, home });
  const close = async (): Promise<void> => {
    await app.close();
    await rm(home, { recursive: true, force: true });
  };
  try {
    await fill(app.services.store);
    await app.http.listen({ host: "127.0.0.1", port: 0 });
    return { app, port: (app.http.server.address() as AddressInfo).port, close };
  } catch (error) {
    await close();
    throw error;
  }
}
