import type { FastifyReply, FastifyRequest } from "fastify";
import { JobCancelledError, UpstreamError, type AppError } from "../../domain/errors.js";
import type { Job } from "../../domain/job.js";
import { watcherSignal } from "../../server/abort.js";
import type { Services } from "../../services.js";
import { QUANTIZING_DIGEST } from "./create.js";
import { jobUpdates, type JobUpdate } from "./job-events.js";
import { toPullingLine, toWireChoice } from "./job-mapping.js";
import { respond } from "./ndjson.js";
import { parseBody, pullSchema, requestedModel } from "./schemas.js";

type Line = Record<string, unknown>;

/**
 * POST /api/pull: Ollama's contract on top of a pull job. The job is started (or joined, when one for the same model
 * runs) and outlives the request: a client that disconnects does not stop it. Nothing is sent until the job has
 * resolved what to download, so a bad name, a missing repository or a refused token is a plain HTTP error; then
 * `pulling manifest` (with the job id and the choice), warnings, `pulling <digest>` progress per file, the local
 * quantization, `verifying sha256 digest`, `writing manifest`, `success`.
 */
export async function pullModel(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const body = parseBody(pullSchema, request.body);
  const job = await services.jobs.start({ model: requestedModel(body), substitute: body.substitute ?? true, insecure: body.insecure ?? false });
  const updates = jobUpdates((listener) => services.jobs.subscribe(job.id, listener), watcherSignal(reply));
  return respond(reply, body.stream ?? true, pullLines(updates), (all) => all[all.length - 1] ?? { status: "success" });
}

/** Job snapshots → Ollama's progress lines (a line per change, no repeats). */
async function* pullLines(updates: AsyncIterable<JobUpdate>): AsyncGenerator<Line> {
  let announced = false;
  const sent = new Map<number, number>();
  const statuses = new Set<string>();
  let quantized = -1;
  let quantizing: string | undefined;
  for await (const { job, failure } of updates) {
    if (job.state === "failed") throw failure ?? errorOf(job);
    if (job.state === "cancelled") throw new JobCancelledError(`the pull of "${job.model}" was cancelled`);
    if (!job.choice) continue;
    if (!announced) {
      announced = true;
      yield { status: "pulling manifest", job: job.id, choice: toWireChoice(job.choice) };
      for (const warning of job.warnings) yield { status: `warning: ${warning}` };
    }
    for (const [index, file] of job.files.entries()) {
      if (file.state === "pending" || sent.get(index) === file.completed) continue;
      sent.set(index, file.completed);
      yield toPullingLine(file);
    }
    if (job.status.startsWith("quantizing")) quantizing = job.status;
    if (quantizing !== undefined && (job.quantize?.completed ?? 0) !== quantized) {
      quantized = job.quantize?.completed ?? 0;
      yield { status: quantizing, digest: QUANTIZING_DIGEST, total: job.quantize?.total ?? 0, completed: quantized };
    }
    for (const status of ["verifying sha256 digest", "writing manifest", "removing unused layers"]) {
      if (job.status === status && !statuses.has(status)) {
        statuses.add(status);
        yield { status };
      }
    }
    if (job.state === "succeeded") {
      if (!statuses.has("writing manifest")) yield { status: "writing manifest" };
      yield { status: "success" };
      return;
    }
  }
}

/** A failed job whose error object is gone (it failed in an earlier run of the server). */
function errorOf(job: Job): AppError {
  return new UpstreamError(job.error?.message ?? "the pull failed");
}
