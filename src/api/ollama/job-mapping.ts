import type { Job, JobFile, PullChoice } from "../../domain/job.js";
import type { WireChoice, WireJob, WireJobFile, WirePullingLine } from "./job-wire.js";

/** A pull's choice on the wire (snake_case, like the rest of the API). */
export function toWireChoice(choice: PullChoice): WireChoice {
  return {
    source: choice.source,
    repo: choice.repo,
    ...(choice.revision !== undefined && { revision: choice.revision }),
    requested: choice.requested,
    ...(choice.substitutedFrom !== undefined && { substituted_from: choice.substitutedFrom }),
    file: choice.file,
    files: choice.files,
    ...(choice.quantization !== undefined && { quantization: choice.quantization }),
    ...(choice.quantizeTo !== undefined && { quantize_to: choice.quantizeTo }),
    size: choice.size,
    reason: choice.reason,
    alternatives: choice.alternatives,
    budget: choice.budget,
    estimate: choice.estimate,
  };
}

/** A job on the wire: GET /api/jobs, /api/jobs/{id} and its events. */
export function toWireJob(job: Job): WireJob {
  const completed = job.files.reduce((sum, file) => sum + file.completed, 0);
  const total = job.files.reduce((sum, file) => sum + file.total, 0);
  return {
    id: job.id,
    type: job.type,
    model: job.model,
    state: job.state,
    status: job.status,
    created_at: job.createdAt.toISOString(),
    ...(job.startedAt && { started_at: job.startedAt.toISOString() }),
    ...(job.finishedAt && { finished_at: job.finishedAt.toISOString() }),
    request: job.request,
    ...(job.choice && { choice: toWireChoice(job.choice) }),
    warnings: job.warnings,
    ...(job.notice !== undefined && { notice: job.notice }),
    files: job.files.map(toWireFile),
    completed,
    total,
    bytes_per_second: job.bytesPerSecond,
    eta_seconds: job.etaSeconds,
    ...(job.quantize && { quantize: job.quantize }),
    ...(job.error && { error: job.error }),
  };
}

function toWireFile(file: JobFile): WireJobFile {
  return { name: file.name, digest: file.digest, total: file.total, completed: file.completed, state: file.state, ...(file.source && { source: file.source }) };
}

/** Ollama's progress line for a file: `pulling <12 hex>` with digest, total and completed. */
export function toPullingLine(file: JobFile): WirePullingLine {
  const hex = file.digest.replace(/^sha256:/, "");
  return { status: `pulling ${hex.slice(0, 12) || file.name}`, digest: file.digest, total: file.total, completed: file.completed };
}
