import { randomUUID } from "node:crypto";
import { createClient } from "redis";
import type { Limits } from "../auth/principal.js";
import type { Admission, LimitCounter, LimitName, LimitState } from "./limit-counter.js";
import { MINUTE_MS, PARALLEL_RETRY_MS } from "./memory-limit-counter.js";
import { CHARGE_SCRIPT, REFRESH_SCRIPT, TAKE_SCRIPT, luaScript, type LuaScript } from "./redis-scripts.js";

/** Prefix of every key the counter writes. */
export const KEY_PREFIX = "ai-server:limits:";

/** How long a running request holds its max_parallel slot unless its server extends it (every third of it). */
const DEFAULT_LEASE_MS = 60_000;
/** How long a request's arrival waits for Redis before it is admitted uncounted. */
const DEFAULT_TIMEOUT_MS = 1000;
const DEFAULT_CONNECT_TIMEOUT_MS = 2000;
/** At most one warning about Redis failing per this interval (the rest are counted in it). */
const DEFAULT_WARN_INTERVAL_MS = 60_000;

export interface RedisLimitCounterOptions {
  /** redis://[user:password@]host:port[/db] or rediss:// (TLS). */
  url: string;
  /** The period "per minute" means (default a minute; tests use less). */
  windowMs?: number;
  /** How long a running request's max_parallel slot lasts unless extended (default 60 s; extended every third). */
  leaseMs?: number;
  /** How long `take` waits for Redis before admitting the request uncounted (default 1 s). */
  timeoutMs?: number;
  connectTimeoutMs?: number;
  /** Where the warnings go (Redis failing, Redis answering again). */
  warn?: (message: string) => void;
  warnIntervalMs?: number;
  /** Called for each operation that Redis failed (the metrics count them). */
  failed?: () => void;
}

type TakeReply = [limit: string, waitMs: number, requestsLeft: number, requestsReset: number, tokensLeft: number, tokensReset: number];

/**
 * A LimitCounter in Redis, so that every server (replica) given the same Redis enforces one limit per principal. The
 * semantics are MemoryLimitCounter's (token buckets for rpm and tpm, refilled continuously; max_parallel), each
 * operation one Lua script that Redis runs atomically (src/limits/redis-scripts.ts), on Redis's clock.
 *
 * A request of a principal with max_parallel holds a member of the principal's `running` sorted set, scored by the
 * end of its lease; this server extends the leases of its running requests every third of a lease, and `release`
 * removes the member. A server that dies stops extending: its requests stop counting when their leases end, and the
 * next `take` drops them.
 *
 * Failing open: when Redis cannot be reached, errs or takes longer than `timeoutMs`, requests are admitted uncounted
 * (no x-ratelimit headers), never refused for it; a warning is logged at most once per `warnIntervalMs`, with the
 * reason. The client reconnects by itself; nothing waits in an offline queue.
 */
export class RedisLimitCounter implements LimitCounter {
  private readonly client: ReturnType<typeof createClient>;
  private readonly windowMs: number;
  private readonly leaseMs: number;
  private readonly timeoutMs: number;
  private readonly warnIntervalMs: number;
  private readonly warn: (message: string) => void;
  private readonly failed: () => void;
  private readonly scripts = { take: luaScript(TAKE_SCRIPT), charge: luaScript(CHARGE_SCRIPT), refresh: luaScript(REFRESH_SCRIPT) };
  /**
   * This server's admitted requests by principal, one entry each until released: the holder id of its max_parallel
   * slot, or null (no max_parallel, or admitted uncounted). `release` names the holder its admission carried (so a
   * long request's lease is not ended by a short one's release); without one, any entry of the principal's.
   */
  private readonly held = new Map<string, Array<string | null>>();
  private readonly holderPrefix = randomUUID();
  private holders = 0;
  private readonly refresher: NodeJS.Timeout;
  private readonly where: string;
  private lastWarningAt = -Infinity;
  private failuresSinceWarning = 0;
  private failing = false;
  private closed = false;
  /** The last error the connection reported, the reason given while disconnected. */
  private lastError: unknown;
  /** Until the first connection succeeds or fails: requests arriving at start-up wait for it (up to timeoutMs). */
  private starting: Promise<void> | undefined;

  constructor(options: RedisLimitCounterOptions) {
    this.windowMs = options.windowMs ?? MINUTE_MS;
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.warnIntervalMs = options.warnIntervalMs ?? DEFAULT_WARN_INTERVAL_MS;
    this.warn = options.warn ?? (() => {});
    this.failed = options.failed ?? (() => {});
    this.where = redactedUrl(options.url);
    this.client = createClient({
      url: options.url,
      // Commands fail at once while disconnected (the request is admitted uncounted) instead of waiting for Redis
      disableOfflineQueue: true,
      socket: { connectTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS },
    });
    let started = (): void => {};
    this.starting = new Promise<void>((resolve) => (started = resolve)).then(() => (this.starting = undefined));
    this.client.on("error", (error: unknown) => {
      this.lastError = error;
      started();
      this.failure(error, false);
    });
    this.client.on("ready", () => {
      started();
      this.connected();
    });
    this.client.connect().catch((error: unknown) => this.failure(error, false));
    this.refresher = setInterval(() => this.refresh(), Math.max(1, Math.floor(this.leaseMs / 3)));
    this.refresher.unref();
  }

  async take(principal: string, limits: Limits): Promise<Admission> {
    if (this.starting !== undefined) await this.within(this.starting);
    if (!this.client.isReady) return this.admitUncounted(principal, new Error(`not connected${this.lastError === undefined ? "" : ` (${reasonOf(this.lastError)})`}`));
    const holder = limits.maxParallel === undefined ? null : `${this.holderPrefix}:${++this.holders}`;
    const keys = principalKeys(principal);
    const reply = this.run(this.scripts.take, [keys.budget, keys.running], [
      String(this.windowMs),
      optional(limits.rpm),
      optional(limits.tpm),
      optional(limits.maxParallel),
      holder ?? "",
      String(this.leaseMs),
      String(PARALLEL_RETRY_MS),
    ]) as Promise<TakeReply>;
    let result: TakeReply | "timeout";
    try {
      result = await this.within(reply);
    } catch (error) {
      return this.admitUncounted(principal, error);
    }
    if (result === "timeout") {
      // Admitted uncounted; should Redis admit it after all, its slot is given back at once
      reply.then(([limit]) => limit === "" && holder !== null && this.removeHolder(keys.running, holder), () => {});
      return this.admitUncounted(principal, new Error(`no answer within ${this.timeoutMs} ms`));
    }
    const [limit, waitMs, requestsLeft, requestsReset, tokensLeft, tokensReset] = result;
    const admission: Admission = limit === "" ? { admitted: true } : { admitted: false, limit: limit as LimitName, retryAfterMs: waitMs };
    if (limits.rpm !== undefined) admission.requests = limitState(limits.rpm, requestsLeft, requestsReset);
    if (limits.tpm !== undefined) admission.tokens = limitState(limits.tpm, tokensLeft, tokensReset);
    if (admission.admitted) {
      this.hold(principal, holder);
      if (holder !== null) admission.holder = holder;
    }
    return admission;
  }

  charge(principal: string, limits: Limits, tokens: number): void {
    if (limits.tpm === undefined || !(tokens > 0) || !this.client.isReady) return;
    const args = [String(this.windowMs), optional(limits.rpm), String(limits.tpm), String(tokens)];
    this.run(this.scripts.charge, [principalKeys(principal).budget], args).catch((error: unknown) => this.failure(error));
  }

  release(principal: string, holder?: string): void {
    const entries = this.held.get(principal);
    if (entries === undefined) return;
    const at = holder === undefined ? entries.length - 1 : entries.indexOf(holder);
    if (at < 0) return;
    const [released] = entries.splice(at, 1);
    if (entries.length === 0) this.held.delete(principal);
    if (released !== undefined && released !== null) this.removeHolder(principalKeys(principal).running, released);
  }

  /**
   * Stops extending leases and closes the connection (waiting briefly for the commands already sent). Slots of
   * requests still running (none after a graceful shutdown) end with their leases.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.refresher);
    this.held.clear();
    let timer: NodeJS.Timeout | undefined;
    try {
      if (this.client.isReady) await Promise.race([this.client.close(), new Promise((resolve) => (timer = setTimeout(resolve, 1000)))]);
    } catch {
      // closing anyway
    } finally {
      clearTimeout(timer);
      if (this.client.isOpen) this.client.destroy();
    }
  }

  /** EVALSHA, and EVAL's fallback once when Redis does not know the script (restarted, or its cache flushed). */
  private async run(script: LuaScript, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await this.client.evalSha(script.sha, { keys, arguments: args });
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      await this.client.scriptLoad(script.source);
      return await this.client.evalSha(script.sha, { keys, arguments: args });
    }
  }

  /** The promise's outcome, or "timeout" after timeoutMs. */
  private async within<T>(promise: Promise<T>): Promise<T | "timeout"> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), this.timeoutMs)));
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private hold(principal: string, holder: string | null): void {
    const entries = this.held.get(principal);
    if (entries === undefined) this.held.set(principal, [holder]);
    else entries.push(holder);
  }

  private removeHolder(running: string, holder: string): void {
    if (!this.client.isReady) return; // its lease ends on its own: nothing extends it any more
    this.client.zRem(running, holder).catch((error: unknown) => this.failure(error));
  }

  /** Extends the leases of this server's running requests: one script per principal. */
  private refresh(): void {
    if (!this.client.isReady) return;
    for (const [principal, entries] of this.held) {
      const holders = entries.filter((entry): entry is string => entry !== null);
      if (holders.length === 0) continue;
      this.run(this.scripts.refresh, [principalKeys(principal).running], [String(this.leaseMs), ...holders]).catch((error: unknown) => this.failure(error));
    }
  }

  private admitUncounted(principal: string, reason: unknown): Admission {
    this.failure(reason);
    this.hold(principal, null);
    return { admitted: true };
  }

  /** Redis failed: counted (an operation that failed) and said at most once per interval. */
  private failure(error: unknown, operation = true): void {
    if (operation) this.failed();
    if (this.closed) return;
    this.failing = true;
    const now = Date.now();
    if (now - this.lastWarningAt < this.warnIntervalMs) {
      this.failuresSinceWarning++;
      return;
    }
    const more = this.failuresSinceWarning > 0 ? ` (${this.failuresSinceWarning} more failure(s) since the last warning)` : "";
    this.lastWarningAt = now;
    this.failuresSinceWarning = 0;
    this.warn(`rate limits: Redis at ${this.where} failed: ${reasonOf(error)}; requests are admitted without being counted until it answers${more}`);
  }

  private connected(): void {
    // Load the scripts once per connection (a restarted Redis has forgotten them); EVALSHA also reloads on NOSCRIPT
    for (const script of Object.values(this.scripts)) this.client.scriptLoad(script.source).catch((error: unknown) => this.failure(error, false));
    if (this.failing) this.warn(`rate limits: Redis at ${this.where} answers again; requests are counted there`);
    this.failing = false;
  }
}

/** A principal's keys, its id in braces (a hash tag: a Redis Cluster keeps both in one slot, as a script needs). */
export function principalKeys(principal: string): { budget: string; running: string } {
  return { budget: `${KEY_PREFIX}{${principal}}:budget`, running: `${KEY_PREFIX}{${principal}}:running` };
}

function limitState(limit: number, remaining: number, resetMs: number): LimitState {
  return { limit, remaining: Number(remaining), resetMs: Number(resetMs) };
}

function optional(value: number | undefined): string {
  return value === undefined ? "" : String(value);
}

/** The URL without its password, for the logs. */
function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "****";
    return parsed.toString();
  } catch {
    return "(an invalid URL)";
  }
}

function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return error.errors.map(reasonOf).join("; ");
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
