import type { OutputFormat } from "../../domain/chat.js";
import { RequestCancelledError, UpstreamError } from "../../domain/errors.js";
import type { GenerationEvent } from "../../domain/generation.js";
import { validateStructuredOutput } from "../structured-output.js";
import { routeOf, type Endpoint } from "./endpoint-pool.js";
import { Attempts, type UpstreamContext } from "./failover.js";
import { sseData } from "./sse.js";
import { isRecord, UpstreamAnswer, type AnswerOptions } from "./stream-answer.js";
import { EndpointFailure } from "./upstream-errors.js";

/** One streamed generation as the endpoints take it. */
export interface StreamPlan {
  /** Under the endpoint's base URL. */
  route: "/chat/completions" | "/completions";
  /** The request JSON for an endpoint (its own model name). */
  body: (endpoint: Endpoint) => Record<string, unknown>;
  /** Checked against the whole text when the answer ends normally ("text" checks nothing). */
  format: OutputFormat;
  answer: AnswerOptions;
}

/**
 * Runs a streamed generation on the model's endpoints and yields its events as each chunk arrives (nothing is held
 * back). While nothing has been handed out, an endpoint that fails — no connection, a reset, a timeout, 5xx, 429, a
 * connection that drops before the first event — is left for the next one (at most MAX_ATTEMPTS); once an event has
 * been handed out, a failure ends the stream with an UpstreamError (in-band for the client), never a retry that would
 * repeat output. The endpoint's 4xx ends it with the request's own error. Aborting `signal`, or the consumer leaving,
 * closes the connection (the endpoint stops generating); after some output an abort ends with `done`.
 */
export async function* streamOnEndpoints(context: UpstreamContext, plan: StreamPlan, signal: AbortSignal): AsyncGenerator<GenerationEvent> {
  const startNs = process.hrtime.bigint();
  const attempts = new Attempts(context);
  for (let endpoint = attempts.next(); endpoint; endpoint = attempts.next()) {
    const answer = new UpstreamAnswer(plan.answer, startNs);
    const connection = new AbortController();
    const onAbort = (): void => connection.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    endpoint.inFlight++;
    let ended = false;
    try {
      if (signal.aborted) throw new RequestCancelledError();
      const started = performance.now();
      const body = await context.client.send(endpoint, "POST", routeOf(endpoint, plan.route), plan.body(endpoint), connection.signal);
      context.events.firstByte(context.model, endpoint.url, (performance.now() - started) / 1000);
      if (body.json) {
        // An endpoint that ignores `stream`: its whole answer, read as one chunk.
        for (const event of answer.take(asChunk(await body.read()))) yield event;
      } else {
        for await (const data of sseData(body.chunks)) {
          if (data.trim() === "[DONE]") break;
          for (const event of answer.take(parseChunk(data, endpoint))) yield event;
        }
      }
      for (const event of answer.finish()) yield event;
      ended = true;
    } catch (error) {
      if (signal.aborted) {
        context.events.request(context.model, endpoint.url, "cancelled");
        if (answer.emitted === 0) throw new RequestCancelledError();
        yield { type: "done", reason: "stop", usage: answer.usage() };
        return;
      }
      if (!(error instanceof EndpointFailure)) {
        if (answer.emitted === 0 && !(error instanceof RequestCancelledError)) attempts.answered(endpoint, "client_error");
        throw error;
      }
      if (answer.emitted === 0) {
        attempts.failed(endpoint, error);
        continue;
      }
      attempts.failed(endpoint, new EndpointFailure(error.message, "broken"));
      throw new UpstreamError(`upstream model "${context.model}" failed in the middle of its answer: ${error.message}`, { cause: error });
    } finally {
      signal.removeEventListener("abort", onAbort);
      connection.abort(); // an answer left unread (the consumer left) closes its connection
      endpoint.inFlight--;
    }
    if (!ended) continue;
    attempts.answered(endpoint, "ok");
    if (answer.reason !== "length") validateStructuredOutput(plan.format, answer.text);
    yield { type: "done", reason: answer.reason, usage: answer.usage() };
    return;
  }
  throw attempts.exhausted();
}

function parseChunk(data: string, endpoint: Endpoint): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    throw new EndpointFailure(`${endpoint.url}: sent an event that is not JSON: ${data.slice(0, 200)}`, "server_error");
  }
  if (!isRecord(parsed)) throw new EndpointFailure(`${endpoint.url}: sent an event that is not a JSON object`, "server_error");
  return parsed;
}

/** A whole chat completion (or completion) as if it were one streamed chunk: `message` becomes the delta. */
function asChunk(whole: unknown): Record<string, unknown> {
  if (!isRecord(whole)) return {};
  const choices = Array.isArray(whole.choices) ? whole.choices : [];
  return {
    ...whole,
    choices: choices.map((choice) => (isRecord(choice) && isRecord(choice.message) ? { ...choice, delta: choice.message } : choice)),
  };
}
