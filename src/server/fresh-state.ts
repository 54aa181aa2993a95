import type { FastifyInstance } from "fastify";
import { routeAccess } from "../auth/route-access.js";
import { DatabaseUnavailableError } from "../domain/errors.js";
import type { Services } from "../services.js";
import { SharedState } from "../store/sql/shared-state.js";

/**
 * Before anything reads the models or the API keys (authentication comes next), a request brings their in-memory
 * copies up to date with the database: one query of the tables' versions on PostgreSQL (none on SQLite unless
 * another connection wrote), and a reload of a table only when it changed. So a change committed by any replica
 * before a request arrives is seen by that request, on every replica: a model created, a key revoked. Open routes
 * (health, readiness, the dashboard's files, preflights) read neither and skip it. When the database cannot be read
 * the request gets 503 database_unavailable.
 */
export function installStateRefresh(http: FastifyInstance, services: Pick<Services, "database">): void {
  const state = SharedState.of(services.database);
  http.addHook("onRequest", async (request) => {
    const url = request.routeOptions.url;
    if (url !== undefined && routeAccess(request.method, url) === "open") return;
    try {
      await state.refresh();
    } catch (error) {
      request.log.warn({ err: error }, "the shared state could not be refreshed");
      throw new DatabaseUnavailableError(`the database cannot be read: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  });
}
