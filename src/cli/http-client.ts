import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import type { CliClient, ModelRow } from "./client.js";

/** Talks to a running server through its Ollama API, the way the ollama CLI does. */
export class HttpCliClient implements CliClient {
  readonly mode = "server";

  constructor(private readonly base: string) {}

  async list(): Promise<ModelRow[]> {
    const body = (await this.call("GET", "/api/tags")) as { models: { name: string; size: number; details: { parameter_size: string; quantization_level: string } }[] };
    return body.models.map((m) => ({ name: m.name, size: m.size, parameterSize: m.details.parameter_size, quantization: m.details.quantization_level }));
  }

  async delete(name: string): Promise<void> {
    await this.call("DELETE", "/api/delete", { model: name });
  }

  async copy(source: string, destination: string): Promise<void> {
    await this.call("POST", "/api/copy", { source, destination });
  }

  async upload(file: string, onProgress: (done: number, total: number) => void): Promise<string> {
    const total = (await stat(file)).size;
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    const digest = `sha256:${hash.digest("hex")}`;
    const head = await fetch(`${this.base}/api/blobs/${digest}`, { method: "HEAD" });
    if (head.ok) {
      onProgress(total, total);
      return digest;
    }
    let done = 0;
    const stream = createReadStream(file);
    stream.on("data", (chunk) => onProgress((done += chunk.length), total));
    const response = await fetch(`${this.base}/api/blobs/${digest}`, {
      method: "POST",
      body: Readable.toWeb(stream) as ReadableStream,
      headers: { "content-type": "application/octet-stream", "content-length": String(total) },
      duplex: "half",
    } as RequestInit);
    if (!response.ok) throw new Error(await errorText(response));
    return digest;
  }

  async create(name: string, digest: string, options: { template?: string; system?: string }): Promise<void> {
    await this.call("POST", "/api/create", { model: name, files: { "model.gguf": digest }, stream: false, ...options });
  }

  async close(): Promise<void> {}

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(`${this.base}${path}`, {
      method,
      ...(body !== undefined && { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    });
    if (!response.ok) throw new Error(await errorText(response));
    const text = await response.text();
    return text === "" ? undefined : JSON.parse(text);
  }
}

async function errorText(response: Response): Promise<string> {
  const text = await response.text();
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && "error" in parsed && typeof parsed.error === "string") return parsed.error;
  } catch {
    // not JSON
  }
  return `${response.status} ${text}`;
}
