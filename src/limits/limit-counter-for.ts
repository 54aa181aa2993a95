import type { Config } from "../config/schema.js";
import type { LimitCounter } from "./limit-counter.js";
import { MemoryLimitCounter } from "./memory-limit-counter.js";

/** What the counter reports: Redis failing or answering again (to the log), and each failed operation (the metrics). */
export interface LimitCounterEvents {
  warn(message: string): void;
  failed(): void;
}

/**
 * The server's LimitCounter: counted in Redis when AI_SERVER_REDIS_URL names one (every replica given it enforces one
 * limit), else in this process's memory. `close` ends the Redis connection at shutdown (nothing for memory). The Redis
 * client is loaded only when a Redis is configured (importing it costs ~100 ms of start-up).
 */
export async function limitCounterFor(config: Pick<Config, "redisUrl">, events: LimitCounterEvents): Promise<{ counter: LimitCounter; close(): Promise<void> }> {
  if (config.redisUrl === "") return { counter: new MemoryLimitCounter(), close: () => Promise.resolve() };
  const { RedisLimitCounter } = await import("./redis-limit-counter.js");
  const counter = new RedisLimitCounter({ url: config.redisUrl, warn: (message) => events.warn(message), failed: () => events.failed() });
  return { counter, close: () => counter.close() };
}
