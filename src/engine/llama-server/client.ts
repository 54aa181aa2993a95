import http from "node:http";
import {
  type AppError,
  ContextOverflowError,
  GenerationError,
  InvalidRequestError,
  RequestCancelledError,
  StructuredOutputError,
} from "../../domain/errors.js";

/** An HTTP error answer of llama-server: `{"error": {"code", "message", "type"}}`. */
export class ServerErrorResponse extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Talks HTTP to one llama-server over its UNIX socket (node:http with `socketPath`, a fresh connection per request:
 * cpp-httplib closes idle kept-alive sockets). Every failure leaves as a catalog error: llama-server's own error
 * answers by their type, a refused or reset connection as the process's exit (`gone()` says why: a crash, with the
 * tail of its log) when it has exited.
 *
 * No request outlives the process: when it dies the kernel closes its end of every connection (a stream ends, a
 * new connection is refused at once), and `exited` also ends every request still open the moment the exit is
 * reported.
 */
export class ServerClient {
  constructor(
    readonly socketPath: string,
    /** Why the process is gone (EngineCrashedError after a crash), or undefined while it runs. */
    private readonly gone: () => Promise<AppError | undefined>,
    /** Aborted when the process exits. */
    private readonly exited?: AbortSignal,
  ) {}

  /** POSTs JSON (GETs without a body) and returns the parsed JSON answer. */
  async post<T>(route: string, body: unknown, signal?: AbortSignal): Promise<T> {
    let text = "";
    await this.request(body === undefined ? "GET" : "POST", route, body, signal, (chunk) => void (text += chunk));
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new GenerationError(`llama-server answered ${route} with something that is not JSON: ${text.slice(0, 200)}`);
    }
  }

  /**
   * POSTs a streaming request and calls `onEvent` with each server-sent event's JSON payload, in order, until the
   * stream ends. An `{"error": …}` event, a broken connection or an abort rejects (abort: RequestCancelledError).
   */
  async stream(route: string, body: unknown, signal: AbortSignal, onEvent: (data: Record<string, unknown>) => void): Promise<void> {
    let pending = "";
    let finished = false;
    const take = (line: string): void => {
      if (!line.startsWith("data: ")) return; // blank separators and ":" pings
      const payload = line.slice(6).trim();
      if (payload === "[DONE]") {
        finished = true;
        return;
      }
      const data = JSON.parse(payload) as Record<string, unknown>;
      if (isRecord(data.error)) throw errorFromBody(500, data.error);
      if (data.stop === true) finished = true;
      onEvent(data);
    };
    await this.request("POST", route, { ...(body as object), stream: true }, signal, (chunk) => {
      pending += chunk;
      let newline = pending.indexOf("\n");
      while (newline !== -1) {
        take(pending.slice(0, newline).replace(/\r$/, ""));
        pending = pending.slice(newline + 1);
        newline = pending.indexOf("\n");
      }
    });
    if (pending !== "") take(pending);
    if (!finished) throw await this.broken(new Error("the stream ended before the generation did"));
  }

  /** GET's status code, or 0 when nothing answers within `timeoutMs` in all (used while the process starts). */
  health(timeoutMs: number): Promise<number> {
    return new Promise((resolve) => {
      const request = http.get({ socketPath: this.socketPath, path: "/health", agent: false }, (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode ?? 0));
        response.on("error", () => resolve(0));
        response.on("close", () => resolve(0)); // after "end" this changes nothing
      });
      // The whole answer within the time, not only some byte: a process that accepts and never answers (or trickles)
      // must not hold the load for ever.
      const timer = setTimeout(() => request.destroy(), timeoutMs);
      timer.unref();
      request.on("close", () => clearTimeout(timer));
      request.on("error", () => resolve(0));
    });
  }

  private async request(method: string, route: string, body: unknown, signal: AbortSignal | undefined, onChunk: (text: string) => void): Promise<void> {
    if (signal?.aborted) throw new RequestCancelledError();
    if (this.exited?.aborted) throw await this.broken(new Error("the process has exited"));
    let onExit: (() => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        const payload = body === undefined ? undefined : JSON.stringify(body);
        const request = http.request(
          {
            socketPath: this.socketPath,
            path: route,
            method,
            agent: false,
            headers: payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
            ...(signal && { signal }),
          },
          (response) => {
            response.setEncoding("utf8"); // decodes characters split across chunks
            const status = response.statusCode ?? 0;
            if (status < 200 || status >= 300) {
              let text = "";
              response.on("data", (chunk: string) => void (text += chunk));
              response.on("end", () => reject(errorFromText(status, text)));
              response.on("error", reject);
              return;
            }
            response.on("data", (chunk: string) => {
              try {
                onChunk(chunk);
              } catch (error) {
                request.destroy();
                reject(error);
              }
            });
            response.on("end", () => (response.complete ? resolve() : reject(new Error("the connection closed mid-answer"))));
            response.on("error", reject);
            response.on("aborted", () => reject(new Error("the connection closed mid-answer")));
          },
        );
        request.on("error", reject);
        onExit = () => {
          request.destroy();
          reject(new Error("the process exited"));
        };
        this.exited?.addEventListener("abort", onExit, { once: true });
        request.end(payload);
      });
    } catch (error) {
      if (signal?.aborted) throw new RequestCancelledError();
      throw await this.broken(error);
    } finally {
      if (onExit) this.exited?.removeEventListener("abort", onExit);
    }
  }

  /** A failure as a catalog error; transport failures are blamed on the process when it has exited. */
  private async broken(error: unknown): Promise<AppError> {
    if (error instanceof ServerErrorResponse) return fromServerError(error);
    if (error instanceof StructuredOutputError || error instanceof GenerationError || error instanceof InvalidRequestError) return error;
    const gone = await this.gone();
    if (gone !== undefined) return gone;
    const message = error instanceof Error ? error.message : String(error);
    return new GenerationError(`llama-server connection failed: ${message}`, { cause: error });
  }
}

/** llama-server's error types → catalog errors. */
export function fromServerError(error: ServerErrorResponse): AppError {
  const message = `llama-server: ${error.message}`;
  if (error.type === "exceed_context_size_error" || /context size|exceeds the available context|too large to process/i.test(error.message)) {
    return new ContextOverflowError(`input does not fit in the context window: ${error.message}`, { cause: error });
  }
  if (error.type === "invalid_request_error" || error.type === "not_supported_error" || error.status === 400 || error.status === 501) {
    return new InvalidRequestError(message, { cause: error });
  }
  return new GenerationError(message, { cause: error });
}

function errorFromText(status: number, text: string): ServerErrorResponse {
  try {
    const body = JSON.parse(text) as unknown;
    if (isRecord(body) && isRecord(body.error)) return errorFromBody(status, body.error);
  } catch {
    // not JSON: use the text
  }
  return new ServerErrorResponse(status, "", text.slice(0, 500) || `HTTP ${status}`);
}

function errorFromBody(status: number, error: Record<string, unknown>): ServerErrorResponse {
  const code = typeof error.code === "number" ? error.code : status;
  return new ServerErrorResponse(code, typeof error.type === "string" ? error.type : "", typeof error.message === "string" ? error.message : JSON.stringify(error));
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
