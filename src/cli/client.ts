import { openModelStore } from "../store/open-store.js";
import { loadConfig, parseListenAddress } from "../config/load.js";


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
  const base = serverUrl(config.host);
  if (await answers(base)) {
    const { HttpCliClient } = await import("./http-client.js");
    return new HttpCliClient(base);
  }
  const { store, db, close } = await openModelStore(config.home);
  const { LocalCliClient } = await import("./local-client.js");
  const { quantizerFor } = await import("../quantize/quantizer-for.js");
  return new LocalCliClient(store, close, quantizerFor(config, store, db));
}

/** The URL a client uses to reach the server listening at `host` (AI_SERVER_HOST): 0.0.0.0 is reached on 127.0.0.1. */
export function serverUrl(hostSetting: string): string {
  const { host, port } = parseListenAddress(hostSetting);
  return `http://${host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
}

/** Whether a server answers at `base` (GET /api/version within 1.5 s). */
export async function answers(base: string): Promise<boolean> {
  try {
    const response = await fetch(`${base}/api/version`, { signal: AbortSignal.timeout(1500) });
    return response.ok;
  } catch {
    return false;
  }
}


