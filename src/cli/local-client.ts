import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { ModelStore } from "../store/model-store.js";
import type { CliClient, ModelRow } from "./client.js";

/** Works on the store directly; used when no server is running. */
export class LocalCliClient implements CliClient {
  readonly mode = "local";

  constructor(private readonly store: ModelStore, private readonly closeStore: () => void) {}

  async list(): Promise<ModelRow[]> {
    return this.store.list().map((m) => ({
      name: m.name,
      size: m.size,
      parameterSize: m.metadata.parameterSize,
      quantization: m.metadata.quantizationLevel,
    }));
  }

  async delete(name: string): Promise<void> {
    await this.store.delete(name);
  }

  async copy(source: string, destination: string): Promise<void> {
    await this.store.copy(source, destination);
  }

  async upload(file: string, onProgress: (done: number, total: number) => void): Promise<string> {
    const total = (await stat(file)).size;
    const stream = createReadStream(file);
    let done = 0;
    stream.on("data", (chunk) => onProgress((done += chunk.length), total));
    return (await this.store.blobs.write(stream)).digest;
  }

  async create(name: string, digest: string, options: { template?: string; system?: string }): Promise<void> {
    await this.store.create({ name, modelDigest: digest, ...options });
  }

  async close(): Promise<void> {
    this.closeStore();
  }
}
