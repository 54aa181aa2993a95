import type { FastifyReply } from "fastify";
import { anthropicErrorBody } from "../../server/error-handler.js";
import { sendStream, type StreamFraming } from "../stream-out.js";
import type { StreamEvent } from "./messages-response.js";

/**
 * Anthropic's server-sent events: `event: <type>\ndata: {json}\n\n`, the event's `type` naming it. A failure after
 * the first event is sent in-band as `event: error` with `{"type": "error", "error": {"type", "message"}}` (which
 * the SDKs throw) and the stream ends; there is no end marker beyond `message_stop`.
 */
const SSE: StreamFraming = {
  contentType: "text/event-stream",
  headers: { "cache-control": "no-cache", "x-accel-buffering": "no" },
  chunk: (value) => `event: ${(value as StreamEvent).type}\ndata: ${JSON.stringify(value)}\n\n`,
  error: (error) => `event: error\ndata: ${JSON.stringify(anthropicErrorBody(error))}\n\n`,
};

/** Streams `events` as Anthropic's server-sent events (see `sendStream` for errors before and after the first event). */
export function sendAnthropicSse(reply: FastifyReply, events: AsyncIterable<StreamEvent>): Promise<FastifyReply> {
  return sendStream(reply, SSE, events);
}
