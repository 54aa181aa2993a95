import { randomBytes } from "node:crypto";
import { JobNotFoundError, toAppError, type AppError } from "../domain/errors.js";
import { isFinal, JOB_STATES, type Job, type JobFile, type JobState, type PullChoice, type PullRequest } from "../domain/job.js";
import { Semaphore } from "../scheduler/semaphore.js";
import type { JobStore } from "./job-store.js";
import { Speedometer } from "./speedometer.js";

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

interface LiveJob<Plan> {
  job: Job;
  plan?: Plan;
  abort: AbortController;
  /** Why it was stopped, when it was: a cancel ends it, a shutdown leaves it to resume. */
  stop?: "cancel" | "shutdown";
  failure?: AppError;
  listeners: Set<JobListener>;
  speed: Speedometer;
  notifyTimer?: NodeJS.Timeout;
  savedAt: number;
  done: Promise<void>;
}

const NOTIFY_EVERY_MS = 100;
const SAVE_EVERY_MS = 1000;

/**
 * The background jobs: pulls that run whether or not anyone watches. A job is written to SQLite before it starts
 * and whenever it changes state, so it is never silently lost: a restart lists it and resumes it. Resolving (what
 * to download) starts at once; downloading waits for one of `maxRunning` slots. Two pulls of one model share one
 * job. Cancelling stops it and removes its partial data; shutting down stops it and leaves it to resume.
 */
export class Jobs<Plan> {
  private readonly live = new Map<string, LiveJob<Plan>>();
  private readonly slots: Semaphore;

  constructor(
    private readonly store: JobStore<Plan>,
    private readonly work: PullWork<Plan>,
    options: {
      maxRunning: number;
      log?: (message: string) => void;
      /** Told of the bytes downloaded as they arrive (the metrics); not of bytes a resumed download already had. */
      downloaded?: (bytes: number) => void;
    },
  ) {
    this.slots = new Semaphore(options.maxRunning);
    this.log = options.log ?? (() => undefined);
    this.downloaded = options.downloaded ?? (() => undefined);
  }

  private readonly log: (message: string) => void;
  private readonly downloaded: (bytes: number) => void;

  /** Starts a pull, or joins the one already running for the same model. Returns the job as it is now. */
  start(request: PullRequest): Job {
    const model = this.work.nameOf(request);
    const running = [...this.live.values()].find((live) => live.job.model.toLowerCase() === model.toLowerCase() && !isFinal(live.job.state));
    if (running) return this.snapshot(running);
    const job: Job = {
      id: randomBytes(6).toString("hex"),
      type: "pull",
      model,
      state: "queued",
      status: "resolving",
      createdAt: new Date(),
      request,
      warnings: [],
      files: [],
      bytesPerSecond: 0,
      etaSeconds: null,
    };
    this.store.insert(job);
    return this.snapshot(this.launch(job, undefined));
  }

  /** Takes up the jobs a previous run left unfinished (at start-up). */
  resume(): void {
    for (const { job, plan } of this.store.unfinished()) {
      if (this.live.has(job.id)) continue;
      this.log(`resuming pull job ${job.id} (${job.model})`);
      this.launch({ ...job, state: "queued", status: plan === undefined ? "resolving" : "waiting for a download slot" }, plan);
    }
  }

  get(id: string): Job {
    const live = this.live.get(id);
    if (live) return this.snapshot(live);
    const stored = this.store.get(id);
    if (!stored) throw new JobNotFoundError(id);
    return stored.job;
  }

  /** Every job, newest first; only those in `states` when given. */
  list(states?: readonly JobState[]): Job[] {
    return this.store
      .list()
      .map(({ job }) => (this.live.has(job.id) ? this.get(job.id) : job))
      .filter((job) => states === undefined || states.includes(job.state));
  }

  /** How many jobs are in each state, as stored (every state present, 0 included). */
  countByState(): Record<JobState, number> {
    const counts = Object.fromEntries(JOB_STATES.map((state) => [state, 0])) as Record<JobState, number>;
    for (const { state, count } of this.store.countByState()) counts[state] = count;
    return counts;
  }

  /**
   * Calls `listener` with the job now and on every change until it ends (then once more with its final state).
   * Returns the function that stops listening.
   */
  subscribe(id: string, listener: JobListener): () => void {
    const live = this.live.get(id);
    if (!live) {
      const job = this.get(id);
      listener(job);
      return () => undefined;
    }
    live.listeners.add(listener);
    listener(this.snapshot(live), live.failure);
    return () => live.listeners.delete(listener);
  }

  /** Stops a queued or running job, removes its partial data, and removes the job; returns it as it ended. */
  async cancel(id: string): Promise<Job> {
    const live = this.live.get(id);
    if (live) {
      live.stop ??= "cancel";
      live.abort.abort(new Error("cancelled"));
      await live.done;
      return this.snapshot(live);
    }
    const job = this.get(id);
    this.store.remove(id);
    return job;
  }

  /** Stops every job, leaving them to resume at the next start. */
  async close(): Promise<void> {
    const all = [...this.live.values()];
    for (const live of all) {
      live.stop ??= "shutdown";
      live.abort.abort(new Error("shutting down"));
    }
    await Promise.all(all.map((live) => live.done));
  }

  private launch(job: Job, plan: Plan | undefined): LiveJob<Plan> {
    const live: LiveJob<Plan> = { job, ...(plan !== undefined && { plan }), abort: new AbortController(), listeners: new Set(), speed: new Speedometer(), savedAt: 0, done: Promise.resolve() };
    this.live.set(job.id, live);
    live.done = this.run(live);
    return live;
  }

  private async run(live: LiveJob<Plan>): Promise<void> {
    const { job } = live;
    const signal = live.abort.signal;
    try {
      if (live.plan === undefined) {
        live.plan = await this.work.plan(job.request, signal, (message) => this.notice(live, message));
        Object.assign(job, this.work.describe(live.plan));
      } else if (job.files.length === 0) {
        Object.assign(job, this.work.describe(live.plan));
      }
      if (this.slots.available === 0) this.update(live, { status: "waiting for a download slot" }, true);
      await this.slots.acquire(signal);
      try {
        this.update(live, { state: "running", status: "downloading", startedAt: job.startedAt ?? new Date() }, true);
        await this.work.execute(live.plan, this.progressOf(live), signal);
      } finally {
        this.slots.release();
      }
      this.update(live, { state: "succeeded", status: "success", finishedAt: new Date() }, true);
    } catch (error) {
      await this.ended(live, error);
    } finally {
      clearTimeout(live.notifyTimer);
      this.live.delete(job.id);
      this.emit(live);
      live.listeners.clear();
    }
  }

  private async ended(live: LiveJob<Plan>, error: unknown): Promise<void> {
    if (live.stop === "shutdown") {
      this.store.save(live.job, live.plan);
      return;
    }
    if (live.stop === "cancel") {
      if (live.plan !== undefined) await this.work.discard(live.plan).catch((failure: unknown) => this.log(`job ${live.job.id}: removing partial data failed: ${String(failure)}`));
      Object.assign(live.job, { state: "cancelled", status: "cancelled", finishedAt: new Date() });
      this.store.remove(live.job.id);
      return;
    }
    const failure = toAppError(error);
    live.failure = failure;
    this.log(`pull job ${live.job.id} (${live.job.model}) failed: ${failure.message}`);
    this.update(live, { state: "failed", status: "failed", finishedAt: new Date(), error: { code: failure.code, message: failure.message } }, true);
  }

  private progressOf(live: LiveJob<Plan>): JobProgress {
    return {
      status: (text) => this.update(live, { status: text }, true),
      file: (index, change) => {
        const file = live.job.files[index];
        if (!file) return;
        const before = file.completed;
        Object.assign(file, change);
        // The change that names the source starts the file (with the bytes a resumed download already had): not new bytes.
        if (file.source === "download" && change.source === undefined && file.completed > before) this.downloaded(file.completed - before);
        live.speed.record(live.job.files.reduce((sum, f) => sum + (f.source === "download" ? f.completed : 0), 0));
        this.update(live, {}, change.state !== undefined);
      },
      quantize: (progress) => this.update(live, { quantize: progress }, false),
      notice: (message) => this.notice(live, message),
    };
  }

  private notice(live: LiveJob<Plan>, message: string): void {
    this.log(`pull job ${live.job.id} (${live.job.model}): ${message}`);
    this.update(live, { notice: message }, true);
  }

  /** Applies a change; saves it (at once when it matters, else at most every second) and tells the listeners. */
  private update(live: LiveJob<Plan>, change: Partial<Job>, important: boolean): void {
    Object.assign(live.job, change);
    const now = Date.now();
    if (important || now - live.savedAt >= SAVE_EVERY_MS) {
      this.store.save(live.job, live.plan);
      live.savedAt = now;
    }
    if (important) {
      clearTimeout(live.notifyTimer);
      live.notifyTimer = undefined;
      this.emit(live);
    } else {
      live.notifyTimer ??= setTimeout(() => {
        live.notifyTimer = undefined;
        this.emit(live);
      }, NOTIFY_EVERY_MS);
    }
  }

  private emit(live: LiveJob<Plan>): void {
    const snapshot = this.snapshot(live);
    for (const listener of live.listeners) listener(snapshot, live.failure);
  }

  /** A copy of the job, with its current speed and time left. */
  private snapshot(live: LiveJob<Plan>): Job {
    const job = structuredClone(live.job);
    if (job.state !== "running") return job;
    const speed = live.speed.bytesPerSecond();
    const left = job.files.reduce((sum, f) => sum + f.total - f.completed, 0);
    return { ...job, bytesPerSecond: Math.round(speed), etaSeconds: speed > 0 ? Math.ceil(left / speed) : left === 0 ? 0 : null };
  }
}
