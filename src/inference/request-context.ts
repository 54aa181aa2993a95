import { AsyncLocalStorage } from "node:async_hooks";
import type { Principal } from "../auth/principal.js";
import type { Usage } from "../domain/generation.js";

/**
 * What the server knows about the request being served, reachable from any code that runs for it (the adapters,
 * run-model, the engines' callers) without threading it through every call: its id, who makes it, the model it
 * used and the tokens it spent. Rate limits, the audit log, metrics and logs read it.
 */
export interface RequestContext {
  /** The request's id: the client's `x-request-id` when it is sane, else a new one; echoed in the response. */
  readonly id: string;
  principal: Principal;
  /** The model the request ran on (its normalised name), once known. */
  model?: string;
  /**
   * The conversation the request belongs to (AI_SERVER_SESSION_HEADER), when the client names one: the engines steer
   * its generations to the slot that served the session last, whose KV cache holds its prefix.
   */
  session?: string;
  /** Tokens spent so far (all generations of the request: `n` choices, count_tokens…). */
  readonly usage: { promptTokens: number; cachedTokens: number; completionTokens: number };
  /**
   * Where the generated text goes, only while the audit log keeps content (AI_SERVER_AUDIT_CONTENT=1); absent, nothing
   * is kept and generation pays nothing for it.
   */
  output?: OutputCapture;
  /** Generations still running for this request, and who waits for them to end (see `workDone`). */
  work?: { running: number; waiters: (() => void)[] };
}

/** Keeps a request's generated text: each generation (`n` choices make several) opens its own part. */
export interface OutputCapture {
  /** A new generation begins; its text goes to the function returned, piece by piece. */
  generation(): (text: string) => void;
}

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs `work` (the rest of a request) inside `context`. */
export function runInRequest(context: RequestContext, work: () => void): void {
  storage.run(context, work);
}

/** The context of the request this code runs for, if any (none in the CLI, tests of pure logic, start-up work). */
export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}

/** Adds a generation's usage to the current request's (no-op outside a request). */
export function recordUsage(model: string, usage: Usage): void {
  const context = storage.getStore();
  if (!context) return;
  context.model = model;
  context.usage.promptTokens += usage.promptTokens;
  context.usage.cachedTokens += usage.cachedTokens ?? 0;
  context.usage.completionTokens += usage.completionTokens;
}

/**
 * Marks a generation of the current request as running; call the returned function when it ends (its usage
 * recorded). A client that leaves mid-stream closes its response before its generation has stopped and counted
 * what it spent: `workDone` lets the end-of-request hooks (rate limits, audit) wait for that.
 */
export function beginWork(): () => void {
  const context = storage.getStore();
  if (!context) return () => {};
  const work = (context.work ??= { running: 0, waiters: [] });
  work.running++;
  let ended = false;
  return () => {
    if (ended) return;
    ended = true;
    if (--work.running === 0) for (const wake of work.waiters.splice(0)) wake();
  };
}

/** Resolves once no generation of `context` is running (at once when none is). */
export function workDone(context: RequestContext): Promise<void> {
  const work = context.work;
  if (!work || work.running === 0) return Promise.resolve();
  return new Promise((resolve) => work.waiters.push(resolve));
}
