import { formatBytes } from "../domain/byte-size.js";
import { runningServer } from "./connection.js";
import { formatEta, formatSpeed, percent, table } from "./format.js";
import type { Job } from "./wire.js";

/** Finished jobs younger than this are listed without --all. */
const RECENT_MS = 24 * 3600 * 1000;

/** `ai-server jobs [--all] [--json]`: the running server's active jobs and those finished in the last day. */
export async function listJobs(options: { all?: boolean; json?: boolean }): Promise<void> {
  const api = await runningServer();
  if (!api) return;
  const { jobs } = await api.json<{ jobs: Job[] }>("GET", "/api/jobs");
  const shown = options.all ? jobs : recentJobs(jobs, new Date());
  process.stdout.write(options.json ? `${JSON.stringify(shown, null, 2)}\n` : jobsTable(shown));
}

/** `ai-server jobs cancel ID`: cancels a queued or running job (its partial downloads go) and removes it. */
export async function cancelJob(id: string): Promise<void> {
  const api = await runningServer();
  if (!api) {
    process.exitCode = 1;
    return;
  }
  const job = await api.json<Job>("DELETE", `/api/jobs/${encodeURIComponent(id)}`);
  console.log(job.state === "cancelled" ? `cancelled job ${job.id} (${job.model})` : `removed job ${job.id} (${job.model}, ${job.state})`);
}

/** Jobs still queued or running, and those that finished within the last day. */
export function recentJobs(jobs: Job[], now: Date): Job[] {
  return jobs.filter((job) => {
    if (job.state === "queued" || job.state === "running") return true;
    const ended = Date.parse(job.finished_at ?? job.created_at);
    return Number.isNaN(ended) || now.getTime() - ended < RECENT_MS;
  });
}

/** ID, MODEL, STATE, PROGRESS (% and bytes), SPEED, ETA, STATUS/ERROR. */
export function jobsTable(jobs: Job[]): string {
  const rows = jobs.map((job) => {
    const active = job.state === "running";
    return [
      job.id,
      job.model,
      job.state,
      progressText(job),
      active ? formatSpeed(job.bytes_per_second) : "-",
      active ? formatEta(job.eta_seconds) : "-",
      job.error ? `error: ${job.error.message}` : job.notice && active ? `${job.status} (${job.notice})` : job.status,
    ];
  });
  return table(["ID", "MODEL", "STATE", "PROGRESS", "SPEED", "ETA", "STATUS/ERROR"], rows);
}

function progressText(job: Job): string {
  if (job.quantize && job.state === "running" && job.status.startsWith("quantizing")) {
    return `${percent(job.quantize.completed, job.quantize.total)} ${job.quantize.completed}/${job.quantize.total} tensors`;
  }
  return job.total > 0 ? `${percent(job.completed, job.total)} ${formatBytes(job.completed)}/${formatBytes(job.total)}` : "-";
}
