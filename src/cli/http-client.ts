import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { authorizationHeaders } from "./api-key.js";
import type { CliClient, CreateOptions, ModelRow } from "./client.js";

/** Talks to a running server through its Ollama API, the way the ollama CLI does. */
export class HttpCliClient implements CliClient {
  readonly mode = "server";

  private readonly api: ServerApi;

  /** `apiKey`: sent when the server requires one (cliApiKey). */
  constructor(private readonly base: string, private readonly apiKey?: string) {
    this.api = new ServerApi(base, apiKey);
  }

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
    const head = await fetch(`${this.base}/api/blobs/${digest}`, { method: "HEAD", headers: authorizationHeaders(this.apiKey) });
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
      headers: { "content-type": "application/octet-stream", "content-length": String(total), ...authorizationHeaders(this.apiKey) },
      duplex: "half",
    } as RequestInit);
    if (!response.ok) throw new Error(await errorText(response));
    return digest;
  }

  async create(name: string, digest: string, options: CreateOptions): Promise<void> {
    const { onQuantizeProgress, ...fields } = options;
    const body = { model: name, files: { "model.gguf": digest }, ...fields };
    if (fields.quantize === undefined) {
      await this.call("POST", "/api/create", { ...body, stream: false });
      return;
    }
    // Streamed, for the quantization's progress lines (the server stops quantizing if this process goes away)
    for await (const line of this.api.ndjson<{ status: string; total?: number; completed?: number }>("/api/create", { ...body, stream: true })) {
      if (line.total !== undefined && line.completed !== undefined) onQuantizeProgress?.(line.status, line.completed, line.total);
    }
  }

  async close(): Promise<void> {}

  private call(method: string, path: string, body?: unknown): Promise<unknown> {
    return this.api.json(method, path, body);
  }
}

/** The message of an error answer: its `error` field when the body is Ollama's `{"error": …}`, else status and body. */
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

/** An error answer from the server (before any streamed line): its HTTP status and message. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "ApiError";
  }
}

/** A streamed answer that ended in an `{"error": …}` line (the HTTP status was already 200). */
export class StreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StreamError";
  }
}

/**
 * The server's API as the CLI commands use it: JSON calls, NDJSON streams and server-sent events, by fetch.
 * Error answers become ApiError, an in-band error line a StreamError; a `signal` aborts the request (the server
 * sees the disconnect).
 */
export class ServerApi {
  /** `base`: e.g. "http://127.0.0.1:11434"; `apiKey`: sent as `Authorization: Bearer` when given (cliApiKey). */
  constructor(readonly base: string, private readonly apiKey?: string) {}

  /** One request with an optional JSON body; the parsed JSON answer (undefined for an empty body). */
  async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const response = await this.request(method, path, body, signal);
    const text = await response.text();
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }

  /** POSTs `body` and yields each NDJSON line of the answer as it arrives. */
  async *ndjson<T>(path: string, body: unknown, signal?: AbortSignal): AsyncGenerator<T> {
    const response = await this.request("POST", path, body, signal);
    for await (const line of lines(response)) {
      if (line.trim() === "") continue;
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed === "object" && parsed !== null && "error" in parsed) throw new StreamError(String(parsed.error));
      yield parsed as T;
    }
  }

  /** GETs a `text/event-stream` and yields each event's name and parsed JSON data until the server ends it. */
  async *events<T>(path: string, signal?: AbortSignal): AsyncGenerator<{ event: string; data: T }> {
    const response = await this.request("GET", path, undefined, signal);
    let event = "message";
    let data: string[] = [];
    for await (const line of lines(response)) {
      if (line === "") {
        if (data.length > 0) yield { event, data: JSON.parse(data.join("\n")) as T };
        event = "message";
        data = [];
      } else if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
  }

  private async request(method: string, path: string, body: unknown, signal: AbortSignal | undefined): Promise<Response> {
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers: { ...(body !== undefined && { "content-type": "application/json" }), ...authorizationHeaders(this.apiKey) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      ...(signal && { signal }),
    });
    if (!response.ok) throw new ApiError(response.status, await errorText(response));
    return response;
  }
}

/** The lines of a response body as they arrive (without their line ends). */
async function* lines(response: Response): AsyncGenerator<string> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = pending.indexOf("\n")) !== -1) {
      yield pending.slice(0, end).replace(/\r$/, "");
      pending = pending.slice(end + 1);
    }
  }
  pending += decoder.decode();
  if (pending !== "") yield pending;
}
