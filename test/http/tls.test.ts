import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import tls from "node:tls";
import { Agent, fetch } from "undici";
import { ConfigError, loadConfig } from "../../src/config/load.js";
import { readTlsFiles, reloadTls } from "../../src/server/tls.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { startServeProcess } from "../helpers/serve-process.js";
import { startServer, type TestServer } from "../helpers/start-server.js";

// HTTPS straight from the server (AI_SERVER_TLS_CERT/KEY) with self-signed certificates made here by openssl, and
// the certificate replaced on SIGHUP without dropping connections. The engine is the fake one in process (nothing
// here runs a model); the SIGHUP test runs the real `ai-server serve`.

const opensslMissing = (() => {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return false;
  } catch {
    return "openssl is not installed: these tests need it to make certificates (apt-get install openssl)";
  }
})();

interface Pair {
  cert: string;
  key: string;
  fingerprint: string;
}

let dir: string;
let first: Pair;
let second: Pair;

/** A self-signed certificate for localhost and 127.0.0.1 (a CA of itself, so that a client can trust it alone). */
function makeCertificate(name: string): Pair {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", `/CN=localhost/O=${name}`,
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "1", "-keyout", key, "-out", cert,
  ], { stdio: "ignore" });
  return { cert, key, fingerprint: new X509Certificate(readFileSync(cert)).fingerprint256 };
}

before(async () => {
  if (opensslMissing) return;
  dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-tls-"));
  first = makeCertificate("first");
  second = makeCertificate("second");
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The configured files, filled with `pair`. */
async function install(pair: Pair, files: { cert: string; key: string }): Promise<void> {
  await copyFile(pair.cert, files.cert);
  await copyFile(pair.key, files.key);
}

/** The certificate a new TLS connection is shown, trusting `trusted` only; rejects when it does not verify. */
function presented(port: number, trusted: Pair): Promise<string> {
  return new Promise((resolve, reject) => {
    void readFile(trusted.cert).then((ca) => {
      const socket = tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => {
        const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? "";
        socket.end();
        resolve(fingerprint);
      });
      socket.once("error", reject);
    }, reject);
  });
}

/** GET `route` on an open TLS socket (keep-alive), resolving with the raw response once it is whole. */
function getOn(socket: tls.TLSSocket, route: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      const [head, body = ""] = text.split("\r\n\r\n");
      const length = Number(/content-length: (\d+)/i.exec(head ?? "")?.[1] ?? NaN);
      if (body.length >= length) {
        socket.off("data", onData);
        socket.off("error", reject);
        resolve(text);
      }
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.write(`GET ${route} HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n`);
  });
}

test("serves HTTPS with the configured certificate, and a reload replaces it without dropping open connections", { skip: opensslMissing }, async () => {
  const files = { cert: path.join(dir, "server.crt"), key: path.join(dir, "server.key") };
  await install(first, files);
  const server: TestServer = await startServer({ engine: new FakeEngine(), config: { tlsCert: files.cert, tlsKey: files.key } });
  try {
    assert.match(server.baseUrl, /^https:\/\//);
    const port = Number(new URL(server.baseUrl).port);
    const trustFirst = new Agent({ connect: { ca: await readFile(first.cert) } });
    const version = await fetch(`${server.baseUrl}/api/version`, { dispatcher: trustFirst });
    assert.equal(version.status, 200);
    assert.equal(typeof ((await version.json()) as { version?: unknown }).version, "string");
    assert.equal(await presented(port, first), first.fingerprint);

    // A connection opened before the reload.
    const open = tls.connect({ host: "127.0.0.1", port, ca: await readFile(first.cert), servername: "localhost" });
    await new Promise<void>((resolve, reject) => open.once("secureConnect", resolve).once("error", reject));
    assert.match(await getOn(open, "/api/version"), /^HTTP\/1\.1 200/);

    await install(second, files);
    const config = { tlsCert: files.cert, tlsKey: files.key };
    assert.equal(reloadTls(server.app.http, config), true);
    assert.equal(await presented(port, second), second.fingerprint, "new connections get the new certificate");
    await assert.rejects(presented(port, first), /self[- ]signed|unable to verify|certificate/i, "the old certificate is no longer presented");
    const trustSecond = new Agent({ connect: { ca: await readFile(second.cert) } });
    assert.equal((await fetch(`${server.baseUrl}/api/version`, { dispatcher: trustSecond })).status, 200);
    assert.match(await getOn(open, "/api/version"), /^HTTP\/1\.1 200/, "the connection opened before the reload still serves");
    open.destroy();

    // A file that is not PEM, then a key that is not the certificate's: the current certificate stays.
    await writeFile(files.cert, "not a certificate");
    assert.equal(reloadTls(server.app.http, config), false);
    assert.equal(await presented(port, second), second.fingerprint);
    await copyFile(first.cert, files.cert); // first's certificate with second's key
    assert.equal(reloadTls(server.app.http, config), false);
    assert.equal(await presented(port, second), second.fingerprint);
    await rm(files.key);
    assert.equal(reloadTls(server.app.http, config), false);
    assert.equal(await presented(port, second), second.fingerprint);
    await Promise.all([trustFirst.close(), trustSecond.close()]);
  } finally {
    await server.close();
  }
});

test("the certificate and key go together, and must be readable PEM that match", { skip: opensslMissing }, () => {
  assert.throws(() => loadConfig({ AI_SERVER_TLS_CERT: first.cert }, { home: dir }), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /AI_SERVER_TLS_CERT and AI_SERVER_TLS_KEY go together/);
    return true;
  });
  assert.throws(() => loadConfig({ AI_SERVER_TLS_KEY: first.key }, { home: dir }), /go together/);
  assert.equal(readTlsFiles({ tlsCert: "", tlsKey: "" }), undefined);
  assert.ok(readTlsFiles({ tlsCert: first.cert, tlsKey: first.key }));
  assert.throws(() => readTlsFiles({ tlsCert: path.join(dir, "missing.crt"), tlsKey: first.key }), /AI_SERVER_TLS_CERT="[^"]*missing\.crt": cannot be read/);
  assert.throws(() => readTlsFiles({ tlsCert: first.cert, tlsKey: second.key }), /not a PEM certificate and its private key/);
});

test("ai-server serve reloads the certificate on SIGHUP, and keeps the old one when the new files are bad", { skip: opensslMissing }, async () => {
  const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-tls-home-"));
  const files = { cert: path.join(home, "server.crt"), key: path.join(home, "server.key") };
  await install(first, files);
  const server = await startServeProcess(
    { AI_SERVER_HOME: home, AI_SERVER_TLS_CERT: files.cert, AI_SERVER_TLS_KEY: files.key, AI_SERVER_ENGINE: "llama-cpp", AI_SERVER_GPU: "off", AI_SERVER_THREADS: "1" },
    { tls: true },
  );
  try {
    const port = Number(new URL(server.baseUrl).port);
    assert.equal(await presented(port, first), first.fingerprint);

    await writeFile(files.key, "garbage");
    server.child.kill("SIGHUP");
    await server.waitForLog(/TLS certificate not reloaded, the current one stays in use/);
    assert.equal(await presented(port, first), first.fingerprint, "a bad key on reload keeps the old certificate");

    await install(second, files);
    server.child.kill("SIGHUP");
    await server.waitForLog(/TLS certificate reloaded/);
    assert.equal(await presented(port, second), second.fingerprint);

    server.child.kill("SIGTERM");
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  } finally {
    await server.kill();
    await rm(home, { recursive: true, force: true });
  }
});
