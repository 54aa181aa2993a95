import { Agent } from "undici";
import { AppError, RequestCancelledError } from "../../domain/errors.js";
import type { Endpoint } from "./endpoint-pool.js";
import { answerError, EndpointFailure, transportFailure } from "./upstream-errors.js";

export interface UpstreamClientOptions {
  connectTimeoutMs: number;
  /** Until the answer's headers, and between two pieces of its body. */
  firstByteTimeoutMs: number;
  /** The key in an environment variable now (src/config's upstreamSecret, injected). */
  secret: (variable: string) => string | undefined;
}

/** An answer whose status was 2xx: its body, with transport failures as EndpointFailure. */
export interface UpstreamAnswerBody {
  /** application/json rather than a stream (an endpoint that ignores `stream`). */
  json: boolean;
  /** The body's bytes as they arrive. */
  chunks: AsyncIterable<Uint8Array>;
  /** Reads the whole body as JSON. */
  read(): Promise<unknown>;
}

/** Largest error body read from an endpoint (the message is in its first bytes). */
const ERROR_BODY_LIMIT = 64 * 1024;

/**
 * HTTP to the endpoints of one upstream model over keep-alive connections (undici), with its timeouts: connecting,
 * the answer's first byte (headers), and the gaps within a streamed body. Each request carries the endpoint's bearer
 * key when it has one, read from its variable at that moment; the key never goes into an error or a log line.
 *
 * Failures are sorted for the failover: an EndpointFailure (no connection, a reset, a timeout, 5xx, 429, refused
 * credentials, an unknown model or route) means another endpoint may answer; any other error (the endpoint's 4xx:
 * a bad request) is the request's own and final.
 */
export class UpstreamClient {
  private readonly agent: Agent;

  constructor(private readonly options: UpstreamClientOptions) {
    this.agent = new Agent({
      connect: { timeout: options.connectTimeoutMs },
      headersTimeout: options.firstByteTimeoutMs,
      bodyTimeout: options.firstByteTimeoutMs,
    });
  }

  /**
   * Sends a request to `path` (under the endpoint's origin) and resolves once a 2xx answer has begun. Rejects with
   * RequestCancelledError when `signal` aborts, EndpointFailure, or the catalog error an endpoint's 4xx maps to.
   */
  async send(endpoint: Endpoint, method: "GET" | "POST", path: string, body: unknown, signal: AbortSignal, timeoutMs?: number): Promise<UpstreamAnswerBody> {
    const url = new URL(endpoint.url);
    const headers: Record<string, string> = { accept: "application/json, text/event-stream" };
    if (endpoint.apiKeyEnv !== undefined) {
      const key = this.options.secret(endpoint.apiKeyEnv);
      if (key === undefined) throw new EndpointFailure(`${endpoint.url}: its key's environment variable ${endpoint.apiKeyEnv} (api_key_env) is not set on this server`, "refused");
      headers.authorization = `Bearer ${key}`;
    }
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) headers["content-type"] = "application/json";
    let answer;
    try {
      answer = await this.agent.request({
        origin: url.origin,
        path,
        method,
        headers,
        ...(payload !== undefined && { body: payload }),
        signal,
        ...(timeoutMs !== undefined && { headersTimeout: timeoutMs, bodyTimeout: timeoutMs }),
      });
    } catch (error) {
      if (signal.aborted) throw new RequestCancelledError();
      throw error instanceof AppError ? error : transportFailure(endpoint, error);
    }
    const status = answer.statusCode;
    if (status < 200 || status >= 300) throw answerError(endpoint, status, await readLimited(answer.body, ERROR_BODY_LIMIT).catch(() => ""));
    const source = answer.body;
    const chunks = async function* (): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of source) yield chunk as Uint8Array;
      } catch (error) {
        if (signal.aborted) throw new RequestCancelledError();
        throw transportFailure(endpoint, error);
      } finally {
        source.destroy(); // an answer left unread (the client went away) gives its connection up
      }
    };
    const contentType = String(answer.headers["content-type"] ?? "");
    return {
      json: contentType.includes("application/json"),
      chunks: chunks(),
      read: async () => {
        let text = "";
        const decoder = new TextDecoder();
        for await (const chunk of chunks()) text += decoder.decode(chunk, { stream: true });
        try {
          return JSON.parse(text + decoder.decode()) as unknown;
        } catch {
          throw new EndpointFailure(`${endpoint.url}: answered something that is not JSON: ${text.slice(0, 200)}`, "server_error");
        }
      },
    };
  }

  /** Closes every connection at once (an unload happens once no request runs; one that still does is cut). */
  async close(): Promise<void> {
    await this.agent.destroy().catch(() => undefined);
  }
}

/** At most `limit` bytes of a body as text; the rest is discarded. */
async function readLimited(body: AsyncIterable<unknown> & { destroy(): unknown }, limit: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buffer = Buffer.from(chunk as Uint8Array);
      parts.push(buffer);
      size += buffer.length;
      if (size >= limit) break;
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(parts).subarray(0, limit).toString("utf8");
}
