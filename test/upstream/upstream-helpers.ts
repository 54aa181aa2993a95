import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { freePort } from "../helpers/free-port.js";
import { buildLlamaServer } from "../helpers/llama-server-binary.js";
import { postJson } from "../helpers/start-server.js";

/** A plain llama.cpp llama-server on loopback (one thread), as a remote engine an upstream model points at. */
export interface PlainLlamaServer {
  /** The base of its OpenAI routes: http://127.0.0.1:<port>/v1. */
  url: string;
  port: number;
  child: ChildProcess;
  /** SIGKILL, as a machine that dies would; resolves once it has exited. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts llama-server on `modelPath` (1 thread, jinja templates, `slots` slots of 1024 tokens) and waits for /health. */
export async function startPlainLlamaServer(modelPath: string, options: { slots?: number; args?: string[] } = {}): Promise<PlainLlamaServer> {
  const port = await freePort();
  const slots = options.slots ?? 1;
  const args = ["-m", modelPath, "--host", "127.0.0.1", "--port", String(port), "-t", "1", "-tb", "1", "-c", String(1024 * slots), "-np", String(slots), "--jinja", "-ngl", "0", "--no-webui", ...(options.args ?? [])];
  const child = spawn(buildLlamaServer(), args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr?.on("data", (chunk: Buffer) => void (log = (log + chunk.toString()).slice(-3000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`llama-server exited: ${log}`);
    if ((await status(port, "/health")) === 200) break;
    if (i > 600) {
      await end("SIGKILL");
      throw new Error(`llama-server did not become healthy: ${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url: `http://127.0.0.1:${port}/v1`, port, child, kill: () => end("SIGKILL"), stop: () => end("SIGTERM") };
}

function status(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const request = http.get({ host: "127.0.0.1", port, path, agent: false }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on("error", () => resolve(0));
  });
}

/** POST /api/create with `upstream`; returns the response (not streamed). */
export function createUpstream(baseUrl: string, name: string, upstream: unknown, extra: Record<string, unknown> = {}): Promise<Response> {
  return postJson(baseUrl, "/api/create", { model: name, upstream, stream: false, ...extra });
}

/** How the relay treats the next requests (for the failures an endpoint can have). */
export type RelayMode =
  /** Forward untouched. */
  | "pass"
  /** Answer 503 at once. */
  | "unavailable"
  /** Close the connection without answering. */
  | "reset"
  /** Never answer (the client's timeout or abort ends it). */
  | "hold"
  /** Forward, then cut the connection once `cutAfterEvents` server-sent events of the answer went through. */
  | "cut";

/**
 * A loopback HTTP relay in front of a real endpoint: what the endpoint would see (each request's Authorization header,
 * path and body are recorded) and faults an endpoint can have, switched by `mode`. It stands for the network between
 * this server and a remote engine, which a test cannot break otherwise.
 */
export class Relay {
  mode: RelayMode = "pass";
  cutAfterEvents = 2;
  readonly seen: Array<{ method: string; path: string; authorization?: string; body: string }> = [];
  /** Requests whose client closed the connection before the answer ended (an abort, a timeout). */
  closedEarly = 0;
  private server?: http.Server;
  url = "";

  constructor(private readonly target: string) {}

  async start(): Promise<this> {
    const target = new URL(this.target);
    this.server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("close", () => {
        if (!response.writableEnded) this.closedEarly++;
      });
      request.on("end", () => {
        const body = Buffer.concat(chunks);
        this.seen.push({ method: request.method ?? "", path: request.url ?? "", ...(request.headers.authorization !== undefined && { authorization: request.headers.authorization }), body: body.toString() });
        if (this.mode === "unavailable") return void response.writeHead(503, { "content-type": "application/json" }).end('{"error":{"message":"overloaded"}}');
        if (this.mode === "reset") return void request.socket.destroy();
        if (this.mode === "hold") return;
        const cut = this.mode === "cut";
        let events = 0;
        const upstream = http.request(
          { host: target.hostname, port: target.port, path: request.url, method: request.method, headers: { ...request.headers, host: target.host }, agent: false },
          (answer) => {
            response.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.on("data", (chunk: Buffer) => {
              response.write(chunk);
              events += chunk.toString().split("\n\n").length - 1;
              if (cut && events >= this.cutAfterEvents) {
                answer.destroy();
                request.socket.destroy();
              }
            });
            answer.on("end", () => response.end());
          },
        );
        upstream.on("error", () => request.socket.destroy());
        upstream.end(body);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}${target.pathname.replace(/\/+$/, "")}`;
    return this;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
