import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { Quantizer } from "../quantize/quantizer.js";
import type { ModelStore } from "../store/model-store.js";
import type { CliClient, CreateOptions, ModelRow } from "./client.js";

/** Works on the store directly; used when no server is running. */
export class LocalCliClient implements CliClient {
  readonly mode = "local";

  constructor(private readonly store: ModelStore, private readonly closeStore: () => Promise<void>, private readonly quantizer: Quantizer) {}

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

  async create(name: string, digest: string, options: CreateOptions): Promise<void> {
    const { quantize, onQuantizeProgress, ...fields } = options;
    if (quantize === undefined) {
      await this.store.create({ name, modelDigest: digest, ...fields });
      return;
    }
    // As the server's /api/create does it: quantize (or reuse), create, drop the source unless a model uses it
    const plan = await this.quantizer.plan(digest, quantize);
    const status = `quantizing ${plan.sourceLevel} model to ${plan.type}`;
    const result = await this.quantizer.quantize(digest, quantize, { onProgress: (p) => onQuantizeProgress?.(status, p.completed, p.total) });
    await this.store.create({ name, modelDigest: result.digest, ...fields });
    if (result.digest !== digest && !this.store.references(digest)) await this.store.blobs.remove(digest);
  }

  async close(): Promise<void> {
    await this.closeStore();
  }
}
