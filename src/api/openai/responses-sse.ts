import type { FastifyReply } from "fastify";
import { sendStream, type StreamFraming } from "../stream-out.js";
import type { ResponseEvent } from "./responses-events.js";

/**
 * The Responses API's server-sent events: `event: <type>` then `data: {json}` (the event, its `type` and
 * `sequence_number` included) each, and no `[DONE]`. A failure is the stream's own `response.failed` event, made by
 * the stream itself; `lastResort` makes an `error` event for a failure that escaped it.
 */
function framing(lastResort: (error: { code: string; message: string }) => ResponseEvent): StreamFraming {
  return {
    contentType: "text/event-stream",
    headers: { "cache-control": "no-cache", "x-accel-buffering": "no" },
    chunk: (value) => frame(value as ResponseEvent),
    error: (error) => frame(lastResort(error)),
  };
}

function frame(event: ResponseEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** Streams a response's events (see `sendStream`: nothing is sent before the first one exists). */
export function sendResponseEvents(
  reply: FastifyReply,
  events: AsyncIterable<ResponseEvent>,
  lastResort: (error: { code: string; message: string }) => ResponseEvent,
): Promise<FastifyReply> {
  return sendStream(reply, framing(lastResort), events);
}
