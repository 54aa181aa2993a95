import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { ClientTimeoutError, HeadersTooLargeError, InvalidRequestError, type AppError } from "../domain/errors.js";
import { errorBody } from "./error-handler.js";

/** What Node's HTTP parser gives a `clientError` listener. */
export interface ClientError extends Error {
  code?: string;
  /** llhttp's reason, e.g. "Invalid header value char". */
  reason?: string;
  /** The bytes being parsed when it failed (a Buffer; it may start mid-request). */
  rawPacket?: unknown;
}

/**
 * Answers a request Node's HTTP parser refuses before any route runs (a header section over 16 KiB, bytes a request
 * line or a header may not hold, a bad Content-Length or Transfer-Encoding, headers that never end) like every other
 * error: a JSON body in the protocol shape of the request's path (when its request line can be read), then the
 * connection closed. The answer says `Connection: close`: without it a keep-alive client takes the connection back
 * for its next request while the server is closing it, and that next request fails with a reset.
 */
export function answerClientError(error: ClientError, socket: Duplex): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  const appError = catalogError(error);
  if (socket.writable) {
    const body = JSON.stringify(errorBody(requestPath(error.rawPacket), appError));
    socket.write(
      `HTTP/1.1 ${appError.status} ${STATUS_CODES[appError.status] ?? ""}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

function catalogError(error: ClientError): AppError {
  if (error.code === "HPE_HEADER_OVERFLOW") return new HeadersTooLargeError("the request's headers are larger than 16 KiB");
  if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") return new ClientTimeoutError("the request's headers did not arrive in time");
  return new InvalidRequestError(`malformed HTTP request: ${error.reason ?? error.message}`);
}

/** The path of the request line at the start of `packet` (its first kilobyte is enough), else "/" (Ollama's shape). */
function requestPath(packet: unknown): string {
  const start = Buffer.isBuffer(packet) ? packet.subarray(0, 1024).toString("latin1") : "";
  return /^[A-Z]+ (\/[^\s?#]*)/.exec(start)?.[1] ?? "/";
}
