import type { Server as HttpServer } from "node:http";
import type { Socket } from "node:net";
import { Server as TlsServer } from "node:tls";
import type { FastifyInstance } from "fastify";
import { ServerShuttingDownError } from "../domain/errors.js";

declare module "fastify" {
  interface FastifyInstance {
    /** The server's graceful shutdown: whether it began, and the requests it may have to stop. */
    shutdown: GracefulShutdown;
  }
}

/** After the grace period's requests were stopped with an error, how long their last bytes get before sockets are dropped. */
const FLUSH_MS = 2000;

/**
 * The HTTP side of a graceful shutdown. Once `begin` is called: every new request is refused with
 * ServerShuttingDownError (503, `Connection: close`), connections with no request in progress are closed (also those
 * that never carried one, which Node's own close leaves open until its headers timeout), a connection whose request
 * finishes is closed then, and requests that only watch background work (a pull's progress) are stopped at once.
 * The others run on for the grace period; whatever still runs then is stopped with ServerShuttingDownError (through
 * its request signal: a stream ends with it in-band, never as if complete), and shortly after any connection left
 * is dropped, so that the server's close always ends.
 */
export class GracefulShutdown {
  private began = false;
  private readonly requests = new Map<AbortController, { watcher: boolean }>();
  /** Open connections → requests in progress on each. */
  private readonly connections = new Map<Socket, number>();
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(server: HttpServer) {
    // Over TLS, the requests' sockets are the TLS sockets, which exist once the handshake is done.
    server.on(server instanceof TlsServer ? "secureConnection" : "connection", (socket: Socket) => {
      this.connections.set(socket, 0);
      socket.once("close", () => this.connections.delete(socket));
    });
    server.on("request", (request: { socket: Socket }, response: NodeJS.EventEmitter) => {
      const socket = request.socket;
      this.connections.set(socket, (this.connections.get(socket) ?? 0) + 1);
      response.once("close", () => {
        const left = (this.connections.get(socket) ?? 1) - 1;
        if (!this.connections.has(socket)) return;
        this.connections.set(socket, left);
        if (this.began && left === 0) socket.destroySoon();
      });
    });
  }

  /** Whether the shutdown began (new requests are refused). */
  get closing(): boolean {
    return this.began;
  }

  /**
   * Registers a request's abort controller, aborted (with ServerShuttingDownError as its reason) at the end of the
   * grace period, or as soon as the shutdown begins for a `watcher` (a request that only watches background work
   * the shutdown stops). Returns the function that unregisters it, for when the request is over.
   */
  track(controller: AbortController, options: { watcher?: boolean } = {}): () => void {
    this.requests.set(controller, { watcher: options.watcher ?? false });
    if (this.began && options.watcher) this.stop(controller);
    return () => void this.requests.delete(controller);
  }

  /**
   * Begins the shutdown (see the class): new requests are refused from now on; the requests in progress may run
   * for `graceMs` more. Call it before closing the server; `end` clears its timers.
   */
  begin(graceMs: number): void {
    if (this.began) return;
    this.began = true;
    for (const [socket, active] of this.connections) if (active === 0) socket.destroy();
    for (const [controller, { watcher }] of this.requests) if (watcher) this.stop(controller);
    this.timers.push(
      setTimeout(() => {
        for (const controller of this.requests.keys()) this.stop(controller);
        this.timers.push(setTimeout(() => this.dropConnections(), FLUSH_MS));
      }, graceMs),
    );
  }

  /** Clears the timers once the server is closed. */
  end(): void {
    for (const timer of this.timers) clearTimeout(timer);
  }

  private stop(controller: AbortController): void {
    controller.abort(new ServerShuttingDownError("the server is shutting down"));
  }

  private dropConnections(): void {
    for (const socket of this.connections.keys()) socket.destroy();
  }
}

/**
 * Gives the Fastify instance its GracefulShutdown (`http.shutdown`), and refuses every request that arrives once the
 * shutdown began, in the route's protocol shape, telling the client not to reuse the connection. Call it right
 * after the request context is installed, before any other hook.
 */
export function installShutdown(http: FastifyInstance): GracefulShutdown {
  const shutdown = new GracefulShutdown(http.server);
  http.decorate("shutdown", shutdown);
  http.addHook("onRequest", async (_request, reply) => {
    if (!shutdown.closing) return;
    void reply.header("connection", "close");
    throw new ServerShuttingDownError("the server is shutting down");
  });
  // A response to a request that began before the shutdown, but not sent yet, also closes its connection.
  http.addHook("onSend", async (_request, reply) => {
    if (shutdown.closing && !reply.raw.headersSent) void reply.header("connection", "close");
  });
  return shutdown;
}
