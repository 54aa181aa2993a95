import type { AuditLog } from "./audit/audit-log.js";
import type { KeyStore } from "./auth/key-store.js";
import type { LimitCounter } from "./limits/limit-counter.js";
import type { Config } from "./config/schema.js";
import type { ModelAliases } from "./scheduler/aliases.js";
import type { Preloader } from "./scheduler/preload.js";
import type { Scheduler } from "./scheduler/scheduler.js";
import type { Metrics } from "./server/metrics.js";
import type { Jobs } from "./jobs/jobs.js";
import type { PullPlan } from "./pull/pull-plan.js";
import type { Quantizer } from "./quantize/quantizer.js";
import type { ModelStore } from "./store/model-store.js";
import type { ResponseStore } from "./store/response-store.js";
import type { SqlDatabase } from "./store/database.js";

/**
 * Everything a request handler may use; built once by the composition root (`app.ts`) and passed down. It lives
 * in a module of its own so that route modules import it without importing the composition root.
 */
export interface Services {
  config: Config;
  store: ModelStore;
  scheduler: Scheduler;
  /** Start-up loads of AI_SERVER_PRELOAD, for the readiness check. */
  preload: Preloader;
  aliases: ModelAliases;
  metrics: Metrics;
  /** The engine serving models: "llama-cpp" or "llama-server" (AI_SERVER_ENGINE, after any fallback). */
  engine: string;
  /** Local quantization (`quantize` on /api/create) with llama.cpp's quantize tool. */
  quantizer: Quantizer;
  /** Background jobs: pulls that run whether or not a client watches, resumed after a restart. */
  jobs: Jobs<PullPlan>;
  /** Stored responses of the Responses API (/v1/responses), kept for AI_SERVER_RESPONSES_RETENTION. */
  responses: ResponseStore;
  /** API keys (hashed, in the database): authentication, and the keys routes. */
  keys: KeyStore;
  /** The audit log (in the database): a row per request, written in batches; GET /api/audit reads it. */
  audit: AuditLog;
  /** What each key (or client address, when open) spent, for the rate limits (in memory; replaceable by a shared store). */
  limits: LimitCounter;
  /**
   * The database holding all state but the model bytes (SQLite, or AI_SERVER_DATABASE_URL's PostgreSQL shared by the
   * replicas): its cached tables are refreshed before each request (server/fresh-state.ts); /ready reads it.
   */
  database: SqlDatabase;
}
