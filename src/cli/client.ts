import { openModelStore } from "../store/open-store.js";
import { loadConfig, parseListenAddress } from "../config/load.js";
import { cliApiKey } from "./api-key.js";
import { readFileSync } from "node:fs";
import type { Config } from "../config/schema.js";
import { Agent, setGlobalDispatcher } from "undici";


export interface ModelRow {
  name: string;
  size: number;
  parameterSize: string;
  quantization: string;
}

/** What `create` records beside the weights, and the quantization to make first. */
export interface CreateOptions {
  template?: string;
  system?: string;
  /** Quantize the weights (an F16, BF16 or F32 GGUF) to this type first, e.g. q4_K_M. */
  quantize?: string;
  /** While quantizing: the status (`quantizing F16 model to Q4_K_M`) and the tensors written of all. */
  onQuantizeProgress?(status: string, completed: number, total: number): void;
}

/** What the CLI needs from a server or, when none runs, straight from the store under AI_SERVER_HOME. */
export interface CliClient {
  readonly mode: "server" | "local";
  list(): Promise<ModelRow[]>;
  delete(name: string): Promise<void>;
  copy(source: string, destination: string): Promise<void>;
  /** Stores the file's bytes, returning their digest (uploads to the server when one runs). */
  upload(file: string, onProgress: (done: number, total: number) => void): Promise<string>;
  create(name: string, digest: string, options: CreateOptions): Promise<void>;
  close(): Promise<void>;
}

/** A client for the server at AI_SERVER_HOST if it answers, else for the local store. */
export async function clientFor(): Promise<CliClient> {
  const config = loadConfig();
  const base = serverUrl(config);
  if (await answers(base)) {
    const { HttpCliClient } = await import("./http-client.js");
    return new HttpCliClient(base, cliApiKey(config));
  }
  const { store, db, close } = await openModelStore(config.home, { databaseUrl: config.databaseUrl });
  const { LocalCliClient } = await import("./local-client.js");
  const { quantizerFor } = await import("../quantize/quantizer-for.js");
  return new LocalCliClient(store, close, quantizerFor(config, store, db));
}

/** The URL a client uses to reach the server listening at `host` (AI_SERVER_HOST): 0.0.0.0 is reached on 127.0.0.1. */
export function serverUrl(config: Pick<Config, "host" | "tlsCert">): string {
  const { host, port } = parseListenAddress(config.host);
  const scheme = config.tlsCert ? "https" : "http";
  if (config.tlsCert) trustServerCertificate(config.tlsCert);
  return `${scheme}://${host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
}

/**
 * A server that serves HTTPS with its own certificate (AI_SERVER_TLS_CERT, often self-signed) is reached by this
 * machine's CLI trusting exactly that certificate. Its name is not checked: the CLI connects to the address the
 * server listens on, which the certificate rarely names; trusting only this certificate is what authenticates it.
 */
function trustServerCertificate(certFile: string): void {
  let ca: string;
  try {
    ca = readFileSync(certFile, "utf8");
  } catch {
    return; // the server will not start with it either; the command then says no server answers
  }
  setGlobalDispatcher(new Agent({ connect: { ca, checkServerIdentity: () => undefined } }));
}

/** Whether a server answers at `base` (GET /api/version within 1.5 s; a 401 is a server that wants a key). */
export async function answers(base: string): Promise<boolean> {
  try {
    const response = await fetch(`${base}/api/version`, { signal: AbortSignal.timeout(1500) });
    return response.ok || response.status === 401;
  } catch {
    return false;
  }
}


