import type { AppError } from "../domain/errors.js";
import type { Job, JobFile, PullChoice, PullRequest } from "../domain/job.js";
import type { Speedometer } from "./speedometer.js";

/** How a running job reports what it does. */
export interface JobProgress {
  status(text: string): void;
  /** Changes a file of the plan (by its index in `describe(plan).files`). */
  file(index: number, update: Partial<JobFile>): void;
  quantize(progress: { completed: number; total: number }): void;
  notice(message: string): void;
}

/** The work a pull job does, injected (the jobs know nothing of the Hub, registries or the store). */
export interface PullWork<Plan> {
  /** The name the model of a request is stored under; throws for a bad name (so a job is never made for one). */
  nameOf(request: PullRequest): string;
  /** Resolves the request: what to fetch and why. Errors here are the ones users act on (not found, gated, …). */
  plan(request: PullRequest, signal: AbortSignal, notice: (message: string) => void): Promise<Plan>;
  describe(plan: Plan): { choice: PullChoice; warnings: string[]; files: JobFile[] };
  /** Fetches and installs; may be called again for a plan it was interrupted in (it resumes). */
  execute(plan: Plan, progress: JobProgress, signal: AbortSignal): Promise<void>;
  /** Removes a plan's partial data (a cancelled job). */
  discard(plan: Plan): Promise<void>;
}

/** Called with a job's state at once and on every change; `failure` is the error a failed job ended with. */
export type JobListener = (job: Job, failure?: AppError) => void;

/** A job this process runs: its state, its plan, how it is stopped and written. */
export interface LiveJob<Plan> {
  job: Job;
  plan?: Plan;
  abort: AbortController;
  /**
   * Why it was stopped, when it was: a cancel ends it, a shutdown leaves it to resume; "released": its stored row
   * is gone (cancelled on another replica) or another replica claimed it, so this process drops it.
   */
  stop?: "cancel" | "shutdown" | "released";
  failure?: AppError;
  listeners: Set<JobListener>;
  speed: Speedometer;
  notifyTimer?: NodeJS.Timeout;
  savedAt: number;
  /** The write under way, whether the job changed since it began, and whether the stored row is still this process's. */
  saving?: Promise<void>;
  dirty: boolean;
  owned: boolean;
  done: Promise<void>;
}

/** What the jobs are told and how they claim their work. */
export interface JobsOptions {
  maxRunning: number;
  /**
   * This process's name in the jobs' claims: a server started again under the same name takes its unfinished jobs
   * back at once; another waits until their claim lapses (default: a name of this process alone).
   */
  owner?: string;
  /** How long a claim lasts unless renewed (renewed at every save, and every third of it). */
  leaseMs?: number;
  log?: (message: string) => void;
  /** Told of the bytes downloaded as they arrive (the metrics); not of bytes a resumed download already had. */
  downloaded?: (bytes: number) => void;
}
