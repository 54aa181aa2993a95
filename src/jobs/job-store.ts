import type Database from "better-sqlite3";
import { z } from "zod";
import { JOB_STATES, type Job } from "../domain/job.js";
import type { Db } from "../store/database.js";

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

/** The part of a job that changes while it runs, stored as one JSON column. */
type Progress = Pick<Job, "status" | "warnings" | "files" | "choice" | "quantize">;

/**
 * Jobs in SQLite (the `jobs` table): written when a job is created, when it resolves, on every change of state and
 * periodically while it runs, so that a restart — even after kill -9 — lists every job and resumes the unfinished
 * ones from the progress last written (the bytes themselves are kept by the downloader).
 */
export class JobStore<Plan> {
  private readonly statements: {
    insert: Database.Statement<unknown[]>;
    update: Database.Statement<unknown[]>;
    one: Database.Statement<[string], unknown>;
    all: Database.Statement<[], unknown>;
    remove: Database.Statement<[string]>;
    countByState: Database.Statement<[], unknown>;
  };

  constructor(db: Db) {
    this.statements = {
      insert: db.prepare(
        `INSERT INTO jobs (id, type, model, state, request, plan, progress, error, created_at, updated_at, started_at, finished_at)
         VALUES (?, ?, ?, ?, ?, NULL, ?, NULL, ?, ?, NULL, NULL)`,
      ),
      update: db.prepare(
        `UPDATE jobs SET state = ?, plan = ?, progress = ?, error = ?, updated_at = ?, started_at = ?, finished_at = ? WHERE id = ?`,
      ),
      one: db.prepare<[string]>("SELECT * FROM jobs WHERE id = ?"),
      all: db.prepare("SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC"),
      remove: db.prepare<[string]>("DELETE FROM jobs WHERE id = ?"),
      countByState: db.prepare("SELECT state, COUNT(*) AS count FROM jobs GROUP BY state"),
    };
  }

  insert(job: Job): void {
    this.statements.insert.run(job.id, job.type, job.model, job.state, JSON.stringify(job.request), JSON.stringify(progressOf(job)), job.createdAt.getTime(), Date.now());
  }

  save(job: Job, plan: Plan | undefined): void {
    this.statements.update.run(
      job.state,
      plan === undefined ? null : JSON.stringify(plan),
      JSON.stringify(progressOf(job)),
      job.error ? JSON.stringify(job.error) : null,
      Date.now(),
      job.startedAt?.getTime() ?? null,
      job.finishedAt?.getTime() ?? null,
      job.id,
    );
  }

  get(id: string): StoredJob<Plan> | undefined {
    const row = this.statements.one.get(id);
    return row === undefined ? undefined : fromRow<Plan>(row);
  }

  /** Every job, newest first. */
  list(): Array<StoredJob<Plan>> {
    return this.statements.all.all().map((row) => fromRow<Plan>(row));
  }

  /** Jobs a restart must take up again. */
  unfinished(): Array<StoredJob<Plan>> {
    return this.list().filter(({ job }) => job.state === "queued" || job.state === "running").reverse();
  }

  /** How many jobs are stored in each state (states without jobs absent). */
  countByState(): Array<{ state: Job["state"]; count: number }> {
    return this.statements.countByState.all().map((row) => countSchema.parse(row));
  }

  remove(id: string): void {
    this.statements.remove.run(id);
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
