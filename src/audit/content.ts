import type { OutputCapture } from "../inference/request-context.js";

/**
 * Prompt and output text for the audit log, kept only with AI_SERVER_AUDIT_CONTENT=1, each bounded: a request body
 * or a request's output longer than CONTENT_LIMIT characters is cut there (and the entry says so).
 */

/** Most characters of a request body, and of a request's output (all its generations together), kept. */
export const CONTENT_LIMIT = 64 * 1024;

/** A request's generated text, up to the bound: one part per generation (`n` choices), in the order they began. */
export class KeptOutput implements OutputCapture {
  readonly parts: string[] = [];
  truncated = false;
  private left: number;

  constructor(limit = CONTENT_LIMIT) {
    this.left = limit;
  }

  generation(): (text: string) => void {
    const index = this.parts.push("") - 1;
    return (text) => {
      if (text.length <= this.left) {
        this.parts[index] += text;
        this.left -= text.length;
        return;
      }
      this.parts[index] += text.slice(0, this.left);
      this.left = 0;
      this.truncated = true;
    };
  }
}

/** A parsed JSON body as JSON text, up to the bound; null for no body (or a raw one: blob uploads). */
export function bodyText(body: unknown, limit = CONTENT_LIMIT): { text: string | null; truncated: boolean } {
  if (body === undefined || body === null || typeof body !== "object" || Buffer.isBuffer(body)) return { text: null, truncated: false };
  const text = JSON.stringify(body);
  return text.length <= limit ? { text, truncated: false } : { text: text.slice(0, limit), truncated: true };
}
