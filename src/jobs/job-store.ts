import { z } from "zod";
import { JOB_STATES, type Job } from "../domain/job.js";
import type { SqlDatabase } from "../store/database.js";

/** A job as stored: what it asked, what it resolved to, how far it got. */
export interface StoredJob<Plan> {
  job: Job;
  plan?: Plan;
}

const rowSchema = z.object({
  id: z.string(),
  type: z.literal("pull"),
  model: z.string(),
  state: z.enum(JOB_STATES),
  request: z.string(),
  plan: z.string().nullable(),
  progress: z.string(),
  error: z.string().nullable(),
  created_at: z.number(),
  started_at: z.number().nullable(),
  finished_at: z.number().nullable(),
});

const countSchema = z.object({ state: z.enum(JOB_STATES), count: z.number() });

/**
 * Who runs a job: a process's identity (its host and home: a restarted server is the same one) and how long its
 * claim lasts without being renewed. A job whose claim lapsed (its replica died) may be claimed by another.
 */
export interface JobClaim {
  owner: string;
  leaseMs: number;
}

/** The part of a job that changes while it runs, stored as one JSON column. */
type Progress = Pick<Job, "status" | "warnings" | "files" | "choice" | "quantize">;

/**
 * Jobs in the database (the `jobs` table): written when a job is created, when it resolves, on every change of state
 * and periodically while it runs, so that a restart — even after kill -9 — lists every job and resumes the unfinished
 * ones from the progress last written (the bytes themselves are kept by the downloader), and so that every replica
 * sharing the database lists every job with its progress.
 */
export class JobStore<Plan> {
  /** Newest first; among jobs of the same millisecond, the last inserted first (SQLite's rowid; the id elsewhere). */
  private readonly newestFirst: string;

  constructor(private readonly db: SqlDatabase) {
    this.newestFirst = db.dialect === "sqlite" ? "created_at DESC, rowid DESC" : "created_at DESC, id DESC";
  }

  /** Stores a new job, claimed by `claim`'s owner. */
  async insert(job: Job, claim: JobClaim): Promise<void> {
    const now = Date.now();
    await this.db.run(
      `INSERT INTO jobs (id, type, model, state, request, plan, progress, error, created_at, updated_at, started_at, finished_at, owner, lease_until)
       VALUES (?, ?, ?, ?, ?, NULL, ?, NULL, ?, ?, NULL, NULL, ?, ?)`,
      [job.id, job.type, job.model, job.state, JSON.stringify(job.request), JSON.stringify(progressOf(job)), job.createdAt.getTime(), now, claim.owner, now + claim.leaseMs],
    );
  }

  /**
   * Writes the job as it is now and renews the claim (the job's fields are read before this returns: the caller may
   * change it after). False when the job is no longer this owner's: removed (cancelled, on any replica), or claimed
   * by another replica after this one's claim lapsed.
   */
  async save(job: Job, plan: Plan | undefined, claim: JobClaim): Promise<boolean> {
    const now = Date.now();
    const { changes } = await this.db.run(
      `UPDATE jobs SET state = ?, plan = ?, progress = ?, error = ?, updated_at = ?, started_at = ?, finished_at = ?, lease_until = ?
       WHERE id = ? AND owner = ?`,
      [
        job.state,
        plan === undefined ? null : JSON.stringify(plan),
        JSON.stringify(progressOf(job)),
        job.error ? JSON.stringify(job.error) : null,
        now,
        job.startedAt?.getTime() ?? null,
        job.finishedAt?.getTime() ?? null,
        now + claim.leaseMs,
        job.id,
        claim.owner,
      ],
    );
    return changes > 0;
  }

  /**
   * Claims an unfinished job for `claim`'s owner: one with no owner (stored before claims existed), its own (a
   * restarted server), or one whose claim lapsed (its replica died). In SQLite, whose file one server uses, any
   * unfinished job (the server that claimed it is this one, before a restart). True when it is now this owner's.
   */
  async claim(id: string, claim: JobClaim): Promise<boolean> {
    const now = Date.now();
    const free = this.db.dialect === "sqlite" ? [] : [claim.owner, now];
    const { changes } = await this.db.run(
      `UPDATE jobs SET owner = ?, lease_until = ? WHERE id = ? AND state IN ('queued', 'running')${
        free.length > 0 ? " AND (owner IS NULL OR owner = ? OR lease_until IS NULL OR lease_until < ?)" : ""
      }`,
      [claim.owner, now + claim.leaseMs, id, ...free],
    );
    return changes > 0;
  }

  async get(id: string): Promise<StoredJob<Plan> | undefined> {
    const row = await this.db.get("SELECT * FROM jobs WHERE id = ?", [id]);
    return row === undefined ? undefined : fromRow<Plan>(row);
  }

  /** Every job, newest first. */
  async list(): Promise<Array<StoredJob<Plan>>> {
    return (await this.db.all(`SELECT * FROM jobs ORDER BY ${this.newestFirst}`)).map((row) => fromRow<Plan>(row));
  }

  /** Jobs a restart must take up again. */
  async unfinished(): Promise<Array<StoredJob<Plan>>> {
    return (await this.list()).filter(({ job }) => job.state === "queued" || job.state === "running").reverse();
  }

  /** How many jobs are stored in each state (states without jobs absent). */
  async countByState(): Promise<Array<{ state: Job["state"]; count: number }>> {
    return (await this.db.all("SELECT state, COUNT(*) AS count FROM jobs GROUP BY state")).map((row) => countSchema.parse(row));
  }

  async remove(id: string): Promise<void> {
    await this.db.run("DELETE FROM jobs WHERE id = ?", [id]);
  }
}

function progressOf(job: Job): Progress {
  return { status: job.status, warnings: job.warnings, files: job.files, ...(job.choice && { choice: job.choice }), ...(job.quantize && { quantize: job.quantize }) };
}

function fromRow<Plan>(value: unknown): StoredJob<Plan> {
  const row = rowSchema.parse(value);
  const progress = JSON.parse(row.progress) as Partial<Progress>;
  const job: Job = {
    id: row.id,
    type: row.type,
    model: row.model,
    state: row.state,
    status: progress.status ?? "",
    createdAt: new Date(row.created_at),
    ...(row.started_at !== null && { startedAt: new Date(row.started_at) }),
    ...(row.finished_at !== null && { finishedAt: new Date(row.finished_at) }),
    request: JSON.parse(row.request) as Job["request"],
    ...(progress.choice && { choice: progress.choice }),
    warnings: progress.warnings ?? [],
    files: progress.files ?? [],
    ...(progress.quantize && { quantize: progress.quantize }),
    ...(row.error !== null && { error: JSON.parse(row.error) as NonNullable<Job["error"]> }),
    bytesPerSecond: 0,
    etaSeconds: null,
  };
  return { job, ...(row.plan !== null && { plan: JSON.parse(row.plan) as Plan }) };
}
