import { PassThrough } from "node:stream";
import type { FastifyReply, FastifyRequest } from "fastify";
import { isFinal } from "../../domain/job.js";
import { watcherSignal } from "../../server/abort.js";
import type { Services } from "../../services.js";
import { jobUpdates } from "./job-events.js";
import { toWireJob } from "./job-mapping.js";
import { jobIdSchema, jobListSchema, jobSchema, parseBody, requestedModel } from "./schemas.js";

/** Progress events are sent at most this often (the final one at once). */
const EVENT_EVERY_MS = 250;
/** A comment line this often keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;

/** POST /api/jobs: starts a pull in the background (or joins the one running for that model): 202 with the job. */
export async function createJob(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const body = parseBody(jobSchema, request.body);
  const job = await services.jobs.start({ model: requestedModel(body), substitute: body.substitute ?? true, insecure: body.insecure ?? false });
  return reply.status(202).header("location", `/api/jobs/${job.id}`).send(toWireJob(job));
}

/** GET /api/jobs[?state=running,queued]: jobs, newest first. */
export async function listJobs(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { state } = parseBody(jobListSchema, request.query ?? {});
  return reply.send({ jobs: (await services.jobs.list(state)).map(toWireJob) });
}

export async function getJob(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { id } = parseBody(jobIdSchema, request.params);
  return reply.send(toWireJob(await services.jobs.get(id)));
}

/** DELETE /api/jobs/{id}: cancels the job if it still runs (removing its partial data) and removes it. */
export async function deleteJob(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { id } = parseBody(jobIdSchema, request.params);
  return reply.send(toWireJob(await services.jobs.cancel(id)));
}

/**
 * GET /api/jobs/{id}/events: server-sent events, `event: job` with the job at once and on every change (progress at
 * most four times a second), ending after its final state. Disconnecting does not affect the job.
 */
export async function jobEvents(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { id } = parseBody(jobIdSchema, request.params);
  await services.jobs.get(id); // 404 before the stream starts
  const body = new PassThrough();
  const gone = new AbortController();
  const updates = jobUpdates((listener) => services.jobs.subscribe(id, listener), AbortSignal.any([gone.signal, watcherSignal(reply)]));
  const keepalive = setInterval(() => body.write(": keep-alive\n\n"), KEEPALIVE_MS);
  body.once("close", () => {
    clearInterval(keepalive);
    gone.abort();
  });
  void (async () => {
    let sentAt = 0;
    let pending: string | undefined;
    let timer: NodeJS.Timeout | undefined;
    const flush = (): void => {
      if (pending !== undefined && !body.destroyed) body.write(pending);
      pending = undefined;
      sentAt = Date.now();
    };
    for await (const { job } of updates) {
      pending = `event: job\ndata: ${JSON.stringify(toWireJob(job))}\n\n`;
      clearTimeout(timer);
      if (isFinal(job.state) || Date.now() - sentAt >= EVENT_EVERY_MS) flush();
      else timer = setTimeout(flush, EVENT_EVERY_MS - (Date.now() - sentAt));
    }
    clearTimeout(timer);
    clearInterval(keepalive);
    body.end();
  })().catch((error: unknown) => body.destroy(error instanceof Error ? error : new Error(String(error))));
  return reply.type("text/event-stream; charset=utf-8").header("cache-control", "no-cache").header("x-accel-buffering", "no").send(body);
}
