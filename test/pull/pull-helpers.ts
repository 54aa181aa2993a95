import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { SettingName } from "../../src/config/schema.js";
import type { FakeInternet } from "../helpers/fake-internet.js";
import { postJson, readNdjson, startServer, type TestServer } from "../helpers/start-server.js";

/** A test server pointed at the fake internet, with its own empty Hugging Face home (no token, no cache). */
export interface PullServer extends TestServer {
  hfHome: string;
}

/** Small parts, quick stall detection: the fixtures are a few hundred KB to a few MB. */
export const PULL_TEST_SETTINGS: Partial<Record<SettingName, unknown>> = {
  pullPartSize: 256 * 1024,
  pullConnections: 4,
  pullStallTimeoutMs: "2s",
  memoryHeadroomBytes: 0,
};

export async function startPullServer(internet: FakeInternet, config: Partial<Record<SettingName, unknown>> = {}): Promise<PullServer> {
  const hfHome = await mkdtemp(path.join(os.tmpdir(), "ai-server-hf-home-"));
  const server = await startServer({ config: { ...internet.config, ...PULL_TEST_SETTINGS, hfHome, ...config } });
  return {
    ...server,
    hfHome,
    async close() {
      await server.close();
      await rm(hfHome, { recursive: true, force: true });
    },
  };
}

/** POST /api/pull, streamed: the status code and every line. */
export async function pull(baseUrl: string, model: string, extra: Record<string, unknown> = {}): Promise<{ status: number; lines: Array<Record<string, unknown>>; error?: string }> {
  const response = await postJson(baseUrl, "/api/pull", { model, ...extra });
  if (response.headers.get("content-type")?.includes("ndjson")) return { status: response.status, lines: await readNdjson(response) };
  const body = (await response.json()) as Record<string, unknown>;
  return { status: response.status, lines: [body], ...(typeof body.error === "string" && { error: body.error }) };
}

export async function getJson<T = Record<string, unknown>>(baseUrl: string, route: string): Promise<{ status: number; body: T }> {
  const response = await fetch(`${baseUrl}${route}`);
  return { status: response.status, body: (await response.json()) as T };
}

/** Waits until `check` is true (polling), or fails after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Files in a directory, [] when it does not exist. */
export async function filesIn(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

export async function modelNames(baseUrl: string): Promise<string[]> {
  const { body } = await getJson<{ models: Array<{ name: string }> }>(baseUrl, "/api/tags");
  return body.models.map((m) => m.name);
}
