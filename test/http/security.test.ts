/** Browser-facing protections: CORS origins, CSRF refusal, DNS-rebinding Host check. Fake engine: no inference needed. */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, test } from "node:test";
import { startServer, type TestServer } from "../helpers/start-server.js";
import { FakeEngine } from "../helpers/fake-engine.js";

let server: TestServer;

before(async () => {
  server = await startServer({ engine: new FakeEngine(), config: { origins: "https://app.example.com" } });
});

after(async () => {
  await server.close();
});

test("a local page and a configured origin get CORS headers, including for the OpenAI SDK's headers", async () => {
  for (const origin of ["http://localhost:3000", "https://app.example.com"]) {
    const response = await fetch(`${server.baseUrl}/api/tags`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,x-stainless-os" },
    });
    assert.ok(response.status < 300, origin);
    assert.equal(response.headers.get("access-control-allow-origin"), origin);
    assert.match(response.headers.get("access-control-allow-headers") ?? "", /x-stainless-os/i);
  }
});

test("a preflight may announce any x-stainless-* header (new SDK releases add some) and the SDKs' key headers, not arbitrary ones", async () => {
  const response = await fetch(`${server.baseUrl}/v1/chat/completions`, {
    method: "OPTIONS",
    headers: {
      origin: "http://localhost:3000",
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization,x-api-key,anthropic-version,x-stainless-read-timeout,x-stainless-some-future-header,x-evil",
    },
  });
  assert.ok(response.status < 300);
  const allowed = (response.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(/,\s*/);
  for (const header of ["authorization", "x-api-key", "anthropic-version", "x-stainless-read-timeout", "x-stainless-some-future-header"]) {
    assert.ok(allowed.includes(header), `${header} in ${allowed.join(",")}`);
  }
  assert.ok(!allowed.includes("x-evil"));
});

test("a page may send the session header and read the request id, session, replica and rate-limit headers", async () => {
  const preflight = await fetch(`${server.baseUrl}/api/chat`, {
    method: "OPTIONS",
    headers: { origin: "http://localhost:3000", "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-session-id" },
  });
  assert.ok((preflight.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(/,\s*/).includes("x-session-id"));
  const response = await fetch(`${server.baseUrl}/api/version`, { headers: { origin: "http://localhost:3000", "x-session-id": "s-1" } });
  const exposed = (response.headers.get("access-control-expose-headers") ?? "").toLowerCase().split(/,\s*/);
  for (const header of ["x-request-id", "x-session-id", "x-ai-server-replica", "retry-after", "x-ratelimit-remaining-requests"]) {
    assert.ok(exposed.includes(header), `${header} in ${exposed.join(",")}`);
  }
});

test("a page from another origin is refused with 403 before anything runs, even a 'simple' text/plain POST", async () => {
  const response = await fetch(`${server.baseUrl}/api/copy`, {
    method: "POST",
    headers: { origin: "https://evil.example", "content-type": "text/plain" },
    body: JSON.stringify({ source: "x", destination: "y" }),
  });
  assert.equal(response.status, 403);
  assert.match(((await response.json()) as { error: string }).error, /origin "https:\/\/evil.example" is not allowed/);
});

test("requests without an Origin (curl, SDKs) are served", async () => {
  assert.equal((await fetch(`${server.baseUrl}/api/version`)).status, 200);
});

test("while listening on loopback, a foreign Host header (DNS rebinding) gets 403; local names pass", async () => {
  const status = (host: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const url = new URL(`${server.baseUrl}/api/version`);
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, headers: { host } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
  assert.equal(await status("attacker.example:11434"), 403);
  for (const host of ["localhost:11434", "127.0.0.1", "[::1]:8080", "myhost.local"]) assert.equal(await status(host), 200, host);
});
