import type { FastifyReply } from "fastify";

/**
 * An AbortSignal that fires when the client goes away before the response is complete (socket closed,
 * `abort()` in a client), or when the server, shutting down, stops the requests still running at the end of its
 * grace period (the signal's reason is then a ServerShuttingDownError: the request ends with that error, in-band
 * when streaming). Every long operation the request starts takes this signal.
 */
export function clientSignal(reply: FastifyReply): AbortSignal {
  return requestSignal(reply, false);
}

/**
 * clientSignal for a request that only watches background work (a pull's progress): the shutdown stops it as soon as
 * it begins, since the work stops then (and resumes at the next start).
 */
export function watcherSignal(reply: FastifyReply): AbortSignal {
  return requestSignal(reply, true);
}

function requestSignal(reply: FastifyReply, watcher: boolean): AbortSignal {
  const controller = new AbortController();
  const response = reply.raw;
  // Absent only on a Fastify instance that createHttpServer did not build.
  const untrack = reply.server.shutdown?.track(controller, { watcher }) ?? (() => undefined);
  const onClose = (): void => {
    untrack();
    if (!response.writableFinished) controller.abort();
  };
  response.once("close", onClose);
  return controller.signal;
}
