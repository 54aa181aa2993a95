import type { FastifyPluginAsync } from "fastify";
import type { PreloadEntry } from "../scheduler/preload.js";
import type { SchedulerStatus } from "../scheduler/scheduler.js";
import type { Services } from "../services.js";

/**
 * GET /health and GET /ready (ours, open to every client). Both answer from what the server holds in memory (and
 * /ready from one real read of the database, SQLite or PostgreSQL): nothing on their path waits for the scheduler's
 * queue, a load or an engine, so they answer at once while every slot is busy.
 */
export function healthRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    /**
     * Readiness with the details: 200 `{"status": "ok"}` once the start-up preloads are done, 503 `{"status":
     * "loading"}` before; with the preload progress, the load in progress, the queue, the memory budget, and failed
     * loads still cooling down (requests for those fail fast with the same reason until `retry_at`).
     */
    app.get("/health", async (_request, reply) => {
      const ready = services.preload.done;
      const body = toHealthResponse(ready, services.preload.progress(), services.scheduler.status(), services.scheduler.running().length);
      return reply.status(ready ? 200 : 503).send(body);
    });

    /**
     * Readiness for a load balancer or an orchestrator: 200 `{"status": "ready"}` once the start-up preloads are done
     * and the store can be read, else 503 `{"status": "not ready", "reasons": [...]}`.
     */
    app.get("/ready", async (request, reply) => {
      const reasons: string[] = [];
      if (!services.preload.done) {
        const entries = services.preload.progress();
        const finished = entries.filter((e) => e.state === "loaded" || e.state === "failed").length;
        reasons.push(`start-up preloads in progress (${finished} of ${entries.length} done)`);
      }
      try {
        await withTimeout(services.store.checkReadable(), READ_TIMEOUT_MS, `no answer within ${READ_TIMEOUT_MS / 1000}s`);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        request.log.warn({ err: error }, "readiness: the store cannot be read");
        reasons.push(`the store cannot be read: ${message}`);
      }
      return reasons.length === 0 ? reply.send({ status: "ready" }) : reply.status(503).send({ status: "not ready", reasons });
    });
  };
}

/** How long /ready waits for its read of the database (a load balancer's check gives up soon too). */
const READ_TIMEOUT_MS = 3000;

function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export interface HealthResponse {
  status: "ok" | "loading";
  /** Start-up loads (AI_SERVER_PRELOAD), in order. */
  preload: PreloadEntry[];
  /** Models loaded now. */
  loaded: number;
  /** The load in progress; `waiting` says why it waits for memory, when it does. */
  loading: { model: string; waiting?: string } | null;
  queue: { waiting: number; max: number };
  /** Bytes the models may take (after the headroom) and bytes booked by loaded models; null before the first load. */
  memory: { budget: { ram: number; vram: number }; booked: { ram: number; vram: number } } | null;
  /** Failed loads in their cooldown: requests for these fail fast with `error` until `retry_at`. */
  failed_loads: Array<{ model: string; error: string; failed_at: string; retry_at: string }>;
}

/** The body of GET /health. */
export function toHealthResponse(ready: boolean, preload: PreloadEntry[], status: SchedulerStatus, loaded: number): HealthResponse {
  return {
    status: ready ? "ok" : "loading",
    preload,
    loaded,
    loading: status.loading,
    queue: { waiting: status.waiting, max: status.maxQueue },
    memory: status.memory,
    failed_loads: status.failedLoads.map((f) => ({ model: f.model, error: f.error, failed_at: f.failedAt.toISOString(), retry_at: f.retryAt.toISOString() })),
  };
}
