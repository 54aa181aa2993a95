import type { FastifyInstance } from "fastify";

/** The response header naming the replica that served a request (AI_SERVER_REPLICA_NAME). */
export const REPLICA_HEADER = "x-ai-server-replica";

/** A session id is kept when it is short and visible ASCII (it is a map key, and echoed in a header). */
const SANE_SESSION = /^[\x21-\x7e]{1,256}$/;

/**
 * Session affinity, for replicas behind a load balancer that hashes on the session header (deploy/nginx.conf): a
 * request naming its session in `header` gets it echoed in the response and carries it in its context, where the
 * engines read it to steer its generations to the slot whose KV cache holds the session's prefix. A value that is
 * not a sane id is ignored (the request is served as one without a session). With `replica` set, every response
 * names this replica in x-ai-server-replica. Runs after the request context exists.
 */
export function installSessionAffinity(http: FastifyInstance, { header, replica }: { header: string; replica: string }): void {
  if (header === "" && replica === "") return;
  http.addHook("onRequest", (request, reply, done) => {
    if (replica !== "") void reply.header(REPLICA_HEADER, replica);
    const session = header === "" ? undefined : request.headers[header];
    if (typeof session === "string" && SANE_SESSION.test(session)) {
      request.requestContext.session = session;
      void reply.header(header, session);
    }
    done();
  });
}
