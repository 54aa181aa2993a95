import type { FastifyReply } from "fastify";
import { openaiErrorBody } from "../../server/error-handler.js";
import { sendStream, type StreamFraming } from "../stream-out.js";

/**
 * OpenAI's server-sent events: `data: {json}\n\n` each, then `data: [DONE]\n\n`. A failure after the first event is
 * sent in-band as `data: {"error": {…}}` (OpenAI's error shape, which the SDKs throw on) and the stream ends without
 * `[DONE]`.
 */
const SSE: StreamFraming = {
  contentType: "text/event-stream",
  headers: { "cache-control": "no-cache", "x-accel-buffering": "no" },
  chunk: (value) => `data: ${JSON.stringify(value)}\n\n`,
  error: (error) => `data: ${JSON.stringify(openaiErrorBody(error))}\n\n`,
  end: "data: [DONE]\n\n",
};

/** Streams `chunks` as OpenAI's server-sent events (see `sendStream` for errors before and after the first event). */
export function sendSse(reply: FastifyReply, chunks: AsyncIterable<unknown>): Promise<FastifyReply> {
  return sendStream(reply, SSE, chunks);
}
