import type { FastifyReply } from "fastify";

/**
 * An AbortSignal that fires when the client goes away before the response is complete (socket closed,
 * `abort()` in a client). Every long operation the request starts takes this signal.
 */
export function clientSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  const response = reply.raw;
  const onClose = (): void => {
    if (!response.writableFinished) controller.abort();
  };
  response.once("close", onClose);
  return controller.signal;
}
