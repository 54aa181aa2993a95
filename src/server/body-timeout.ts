import { STATUS_CODES, type IncomingHttpHeaders } from "node:http";
import type { FastifyInstance } from "fastify";
import { ClientTimeoutError } from "../domain/errors.js";
import { errorBody } from "./error-handler.js";

/**
 * A request body that stops arriving ends the request: after `timeoutMs` without a byte of it, the client gets 408
 * (in its protocol's shape) and the connection is closed, so a stalled or trickled-to-death body (or blob upload, and
 * its partial file) holds nothing for long. The clock is the time between bytes, not the whole upload: a model of
 * gigabytes that keeps moving is never cut. It runs only while a body is owed: once the body is in, the socket has no
 * timeout again, and a streamed answer takes as long as it takes (the server's `requestTimeout` is 0 for that).
 * `timeoutMs` 0: no limit.
 */
export function installBodyTimeout(http: FastifyInstance, timeoutMs: number): void {
  if (timeoutMs <= 0) return;
  http.addHook("onRequest", async (request, reply) => {
    const { raw } = request;
    const socket = raw.socket;
    if (!announcesBody(raw.headers) || raw.complete || socket === null) return;
    const disarm = (): void => {
      raw.off("timeout", stalled);
      // A body read to its end after the answer went out (refused early, then drained): the socket's timeout is
      // Node's keep-alive one by now, which must stay.
      if (!reply.raw.writableFinished) socket.setTimeout(0);
    };
    // Node emits `timeout` on the request only while its body is incomplete (else on the response: see below).
    const stalled = (): void => {
      const error = new ClientTimeoutError(`the request body stalled: no byte for ${timeoutMs / 1000} s (AI_SERVER_BODY_TIMEOUT)`);
      request.log.info({ code: error.code }, error.message);
      if (!reply.raw.headersSent && socket.writable) {
        const body = JSON.stringify(errorBody(request.url, error));
        socket.write(
          `HTTP/1.1 408 ${STATUS_CODES[408]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      }
      socket.destroy();
    };
    raw.on("timeout", stalled);
    raw.once("end", disarm);
    // A body received in full but not read yet when the socket goes idle: no stall. Listening here keeps Node from
    // destroying the socket for it.
    reply.raw.once("timeout", () => {
      if (raw.complete) disarm();
    });
    socket.setTimeout(timeoutMs);
  });
}

/** Whether the request says a body follows (Content-Length above 0, or chunked). */
function announcesBody(headers: IncomingHttpHeaders): boolean {
  return headers["transfer-encoding"] !== undefined || Number(headers["content-length"] ?? 0) > 0;
}
