import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createSecureContext, type Server as TlsServer } from "node:tls";
import type { FastifyInstance } from "fastify";
import { ConfigError } from "../config/load.js";
import { settings, type Config } from "../config/schema.js";

/** The certificate (with its chain) and private key the server presents, as read from their PEM files. */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/**
 * Reads AI_SERVER_TLS_CERT and AI_SERVER_TLS_KEY and checks that they make a usable pair (PEM that parses, a key that
 * matches the certificate); undefined when TLS is not configured. Throws a ConfigError naming the file and why.
 */
export function readTlsFiles(config: Pick<Config, "tlsCert" | "tlsKey">): TlsFiles | undefined {
  if (config.tlsCert === "" && config.tlsKey === "") return undefined;
  const read = (env: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new ConfigError([`${env}=${JSON.stringify(file)}: cannot be read: ${messageOf(error)}`]);
    }
  };
  const files = { cert: read(settings.tlsCert.env, config.tlsCert), key: read(settings.tlsKey.env, config.tlsKey) };
  try {
    createSecureContext(files);
  } catch (error) {
    throw new ConfigError([
      `${settings.tlsCert.env}=${JSON.stringify(config.tlsCert)} and ${settings.tlsKey.env}=${JSON.stringify(config.tlsKey)}: not a PEM certificate and its private key: ${messageOf(error)}`,
    ]);
  }
  return files;
}

/** "CN=example.org, valid until Jan  1 00:00:00 2030 GMT, sha256 AB:CD:…" (the first certificate of the chain), for logs. */
export function describeCertificate(cert: Buffer): string {
  try {
    const x509 = new X509Certificate(cert);
    return `${x509.subject.replaceAll("\n", ", ")}, valid until ${x509.validTo}, sha256 ${x509.fingerprint256}`;
  } catch (error) {
    return `(not described: ${messageOf(error)})`;
  }
}

/**
 * Reads the certificate files again and makes the server present them on new connections; open connections keep
 * theirs and are not dropped. A file that cannot be read, or a pair that is not usable, leaves the current
 * certificate in use and logs why. Returns whether the certificate was replaced. SIGHUP calls this.
 */
export function reloadTls(http: FastifyInstance, config: Pick<Config, "tlsCert" | "tlsKey">): boolean {
  try {
    const files = readTlsFiles(config);
    if (files === undefined) return false;
    // Fastify built with the `https` option serves with a tls.Server (an https.Server).
    (http.server as unknown as TlsServer).setSecureContext(files);
    http.log.info(`TLS certificate reloaded: ${describeCertificate(files.cert)}`);
    return true;
  } catch (error) {
    const reason = error instanceof ConfigError ? error.problems.join("; ") : messageOf(error);
    http.log.error(`TLS certificate not reloaded, the current one stays in use: ${reason}`);
    return false;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
