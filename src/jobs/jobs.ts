import { randomBytes } from "node:crypto";
import { JobNotFoundError, toAppError } from "../domain/errors.js";
import { isFinal, JOB_STATES, type Job, type JobState, type PullRequest } from "../domain/job.js";
import { Semaphore } from "../scheduler/semaphore.js";
import type { JobClaim, JobStore } from "./job-store.js";
import { persistJob } from "./job-persistence.js";
import type { JobListener, JobProgress, JobsOptions, LiveJob, PullWork } from "./job-types.js";
import { watchStoredJob } from "./stored-job-watch.js";
import { Speedometer } from "./speedometer.js";

export type { JobListener, JobProgress, JobsOptions, PullWork } from "./job-types.js";

const NOTIFY_EVERY_MS = 100;
const SAVE_EVERY_MS = 1000;
/** A job's claim lasts this long without being renewed; a replica that died leaves its jobs to the others after it. */
export const JOB_LEASE_MS = 30_000;

/**
 * The background jobs: pulls that run whether or not anyone watches. A job is written to the database before it
 * starts and whenever it changes state, so it is never silently lost: a restart lists it and resumes it, and every
 * replica sharing the database lists it with its progress. Resolving (what to download) starts at once;
 * downloading waits for one of `maxRunning` slots. Two pulls of one model share one job. Cancelling stops it and
 * removes its partial data; shutting down stops it and leaves it to resume.
 *
 * Each job is claimed by the process running it (the `owner` and `lease_until` columns), renewed while it runs: a
 * replica takes over unfinished jobs whose claim lapsed (their replica died), checking every half lease. A process
 * whose job was removed (cancelled on another replica) or claimed by another stops it at its next write.
 */
export class Jobs<Plan> {
  private readonly live = new Map<string, LiveJob<Plan>>();
  /** Jobs being stored before they run, by model (a second start joins) and by id (not taken over meanwhile). */
  private readonly starting = new Map<string, Promise<Job>>();
  private readonly inserting = new Set<string>();
  private readonly slots: Semaphore;
  private readonly claim: JobClaim;
  private readonly log: (message: string) => void;
  private readonly downloaded: (bytes: number) => void;
  private timers: NodeJS.Timeout[] = [];
  private closed = false;

  constructor(
    private readonly store: JobStore<Plan>,
    private readonly work: PullWork<Plan>,
    options: JobsOptions,
  ) {
    this.slots = new Semaphore(options.maxRunning);
    this.claim = { owner: options.owner ?? `${process.pid}-${randomBytes(6).toString("hex")}`, leaseMs: options.leaseMs ?? JOB_LEASE_MS };
    this.log = options.log ?? (() => undefined);
    this.downloaded = options.downloaded ?? (() => undefined);
  }

  /** Starts a pull, or joins the one already running for the same model. Returns the job as it is now, once stored. */
  async start(request: PullRequest): Promise<Job> {
    const model = this.work.nameOf(request);
    const running = [...this.live.values()].find((live) => live.job.model.toLowerCase() === model.toLowerCase() && !isFinal(live.job.state));
    if (running) return this.snapshot(running);
    const key = model.toLowerCase();
    const starting = this.starting.get(key);
    if (starting) return starting;
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
    this.inserting.add(job.id);
    const begun = this.store
      .insert(job, this.claim)
      .then(() => this.snapshot(this.launch(job, undefined)))
      .finally(() => {
        this.starting.delete(key);
        this.inserting.delete(job.id);
      });
    this.starting.set(key, begun);
    return begun;
  }

  /**
   * Takes up the jobs a previous run left unfinished (at start-up); from then on renews this process's claims and,
   * every half lease, takes over the jobs of replicas that died.
   */
  async resume(): Promise<void> {
    await this.takeOver();
    const warn = (error: unknown): void => this.log(`taking over jobs failed: ${error instanceof Error ? error.message : String(error)}`);
    this.timers = [
      setInterval(() => void this.takeOver().catch(warn), this.claim.leaseMs / 2),
      setInterval(() => this.live.forEach((live) => void this.persist(live)), this.claim.leaseMs / 3),
    ];
    for (const timer of this.timers) timer.unref();
  }

  async get(id: string): Promise<Job> {
    const live = this.live.get(id);
    if (live) return this.snapshot(live);
    const stored = await this.store.get(id);
    if (!stored) throw new JobNotFoundError(id);
    return stored.job;
  }

  /** Every job, newest first; only those in `states` when given. */
  async list(states?: readonly JobState[]): Promise<Job[]> {
    return (await this.store.list())
      .map(({ job }) => {
        const live = this.live.get(job.id);
        return live ? this.snapshot(live) : job;
      })
      .filter((job) => states === undefined || states.includes(job.state));
  }

  /** How many jobs are in each state, as stored (every state present, 0 included). */
  async countByState(): Promise<Record<JobState, number>> {
    const counts = Object.fromEntries(JOB_STATES.map((state) => [state, 0])) as Record<JobState, number>;
    for (const { state, count } of await this.store.countByState()) counts[state] = count;
    return counts;
  }

  /**
   * Calls `listener` with the job now and on every change until it ends (then once more with its final state); a
   * job this process does not run (another replica's) is followed in the database. Returns the function that stops
   * listening.
   */
  subscribe(id: string, listener: JobListener): () => void {
    const live = this.live.get(id);
    if (!live) return watchStoredJob(this.store, id, listener);
    live.listeners.add(listener);
    listener(this.snapshot(live), live.failure);
    return () => live.listeners.delete(listener);
  }

  /**
   * Stops a queued or running job, removes its partial data, and removes the job; returns it as it ended. A job
   * another replica runs is removed here, and that replica stops it (removing its partial data) at its next write.
   */
  async cancel(id: string): Promise<Job> {
    const live = this.live.get(id);
    if (live) {
      live.stop ??= "cancel";
      live.abort.abort(new Error("cancelled"));
      await live.done;
      return this.snapshot(live);
    }
    const job = await this.get(id);
    await this.store.remove(id);
    return job;
  }

  /** Stops every job, leaving them to resume at the next start. */
  async close(): Promise<void> {
    this.closed = true;
    this.timers.forEach(clearInterval);
    await Promise.allSettled([...this.starting.values()]);
    const all = [...this.live.values()];
    for (const live of all) {
      live.stop ??= "shutdown";
      live.abort.abort(new Error("shutting down"));
    }
    await Promise.all(all.map((live) => live.done));
  }

  /** Claims and runs the unfinished jobs nobody runs: left by this server's previous run, or by a replica that died. */
  private async takeOver(): Promise<void> {
    for (const { job, plan } of await this.store.unfinished()) {
      const mine = (): boolean => this.live.has(job.id) || this.inserting.has(job.id);
      if (this.closed || mine() || !(await this.store.claim(job.id, this.claim)) || this.closed || mine()) continue;
      this.log(`resuming pull job ${job.id} (${job.model})`);
      this.launch({ ...job, state: "queued", status: plan === undefined ? "resolving" : "waiting for a download slot" }, plan);
    }
  }

  private launch(job: Job, plan: Plan | undefined): LiveJob<Plan> {
    const live: LiveJob<Plan> = {
      job,
      ...(plan !== undefined && { plan }),
      abort: new AbortController(),
      listeners: new Set(),
      speed: new Speedometer(),
      savedAt: 0,
      dirty: false,
      owned: true,
      done: Promise.resolve(),
    };
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
      // Its final state is stored before anyone is told of it (another replica asked next must see it too).
      while (live.saving) await live.saving;
      this.live.delete(job.id);
      this.emit(live);
      live.listeners.clear();
    }
  }

  private async ended(live: LiveJob<Plan>, error: unknown): Promise<void> {
    if (live.stop === "shutdown") {
      await this.persist(live);
      return;
    }
    if (live.stop === "cancel" || live.stop === "released") {
      if (live.stop === "released") this.log(`pull job ${live.job.id} (${live.job.model}) was cancelled or taken over by another replica: stopped here`);
      if (live.plan !== undefined) await this.work.discard(live.plan).catch((failure: unknown) => this.log(`job ${live.job.id}: removing partial data failed: ${String(failure)}`));
      Object.assign(live.job, { state: "cancelled", status: "cancelled", finishedAt: new Date() });
      while (live.saving) await live.saving;
      if (live.stop === "cancel") await this.store.remove(live.job.id).catch((failure: unknown) => this.log(`job ${live.job.id}: removing it failed: ${String(failure)}`));
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

  /**
   * Applies a change; saves it (at once when it matters, else at most every second) and tells the listeners (of a
   * final state, once it is stored: see run).
   */
  private update(live: LiveJob<Plan>, change: Partial<Job>, important: boolean): void {
    Object.assign(live.job, change);
    const now = Date.now();
    if (important || now - live.savedAt >= SAVE_EVERY_MS) {
      void this.persist(live);
      live.savedAt = now;
    }
    if (isFinal(live.job.state)) return;
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

  private persist(live: LiveJob<Plan>): Promise<void> {
    return persistJob(live, this.store, this.claim, this.log);
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
