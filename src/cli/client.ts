import { openModelStore } from "../store/open-store.js";
import { loadConfig, parseListenAddress } from "../config/load.js";


export interface ModelRow {
  name: string;
  size: number;
  parameterSize: string;
  quantization: string;
}

/** What the CLI needs from a server or, when none runs, straight from the store under AI_SERVER_HOME. */
export interface CliClient {
  readonly mode: "server" | "local";
  list(): Promise<ModelRow[]>;
  delete(name: string): Promise<void>;
  copy(source: string, destination: string): Promise<void>;
  /** Stores the file's bytes, returning their digest (uploads to the server when one runs). */
  upload(file: string, onProgress: (done: number, total: number) => void): Promise<string>;
  create(name: string, digest: string, options: { template?: string; system?: string }): Promise<void>;
  close(): Promise<void>;
}

/** A client for the server at AI_SERVER_HOST if it answers, else for the local store. */
export async function clientFor(): Promise<CliClient> {
  const config = loadConfig();
  const { host, port } = parseListenAddress(config.host);
  const base = `http://${host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
  if (await answers(base)) {
    const { HttpCliClient } = await import("./http-client.js");
    return new HttpCliClient(base);
  }
  const { store, close } = await openModelStore(config.home);
  const { LocalCliClient } = await import("./local-client.js");
  return new LocalCliClient(store, close);
}

async function answers(base: string): Promise<boolean> {
  try {
    const response = await fetch(`${base}/api/version`, { signal: AbortSignal.timeout(1500) });
    return response.ok;
  } catch {
    return false;
  }
}


