/**
 * The dashboard's one way to reach the server: same origin, the key of this browser session (sessionStorage only,
 * never localStorage or a cookie) as a Bearer token, errors turned into ApiError with the server's own message.
 */

const KEY_ITEM = "ai-server.key";

/** The API key signed in for this browser tab's session, if any. */
export function sessionKey(): string | null {
  return sessionStorage.getItem(KEY_ITEM);
}

export function setSessionKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(KEY_ITEM);
  else sessionStorage.setItem(KEY_ITEM, key);
}

/** A refused or failed call: HTTP status, the error code when the server gave one, and its message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

function headers(body: unknown): HeadersInit {
  const key = sessionKey();
  return {
    ...(body !== undefined && { "content-type": "application/json" }),
    ...(key !== null && { authorization: `Bearer ${key}` }),
  };
}

/** Calls the server and answers the response once it is known to be a success (ApiError otherwise). */
export async function request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
  const response = await fetch(path, {
    method,
    headers: headers(body),
    ...(body !== undefined && { body: JSON.stringify(body) }),
    ...(signal && { signal }),
  });
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** A JSON call: the parsed body (undefined for an empty one). */
export async function api<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const response = await request(method, path, body, signal);
  const text = await response.text();
  return (text === "" ? undefined : JSON.parse(text)) as T;
}

/** Every error shape the server answers in: Ollama's `{error: "…"}`, OpenAI's and Anthropic's `{error: {message, code|type}}`. */
async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: unknown };
    const error = body.error;
    if (typeof error === "string") return new ApiError(response.status, error);
    if (error && typeof error === "object") {
      const { message, code, type } = error as { message?: unknown; code?: unknown; type?: unknown };
      const name = typeof code === "string" ? code : typeof type === "string" ? type : undefined;
      return new ApiError(response.status, typeof message === "string" ? message : response.statusText, name);
    }
  } catch {
    // not JSON: the text itself
  }
  return new ApiError(response.status, text.trim() || `${response.status} ${response.statusText}`);
}

/** Lines of a streamed NDJSON answer (Ollama's streams), parsed, as they arrive. */
export async function* ndjsonLines<T>(response: Response): AsyncGenerator<T> {
  for await (const line of lines(response)) if (line.trim() !== "") yield JSON.parse(line) as T;
}

/** Events of a text/event-stream answer (the jobs' events, the /v1 streams): `event` name and raw `data`. */
export async function* sseEvents(response: Response): AsyncGenerator<{ event: string; data: string }> {
  let event = "message";
  let data: string[] = [];
  for await (const line of lines(response)) {
    if (line === "") {
      if (data.length > 0) yield { event, data: data.join("\n") };
      event = "message";
      data = [];
    } else if (line.startsWith("event:")) {
      event = line.slice(6).trim();
    } else if (line.startsWith("data:")) {
      data.push(line.slice(5).replace(/^ /, ""));
    }
  }
  if (data.length > 0) yield { event, data: data.join("\n") };
}

async function* lines(response: Response): AsyncGenerator<string> {
  if (!response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += value;
      let at: number;
      while ((at = rest.indexOf("\n")) >= 0) {
        yield rest.slice(0, at).replace(/\r$/, "");
        rest = rest.slice(at + 1);
      }
    }
    if (rest !== "") yield rest;
  } finally {
    reader.releaseLock();
  }
}
