import os from "node:os";
import { buildApp } from "./app.js";
import { refuseOpenOnPublicAddress } from "./auth/open-address.js";
import { ConfigError, parseListenAddress, resolveConfig, type ResolvedConfig } from "./config/load.js";
import { describeCertificate, readTlsFiles, reloadTls, type TlsFiles } from "./server/tls.js";

/**
 * Starts the server: read the configuration once (environment and config file), build, listen. SIGINT/SIGTERM shut
 * it down gracefully (app.close; a second signal exits at once); SIGHUP reloads the TLS certificate.
 */
export async function serve(): Promise<void> {
  let resolved: ResolvedConfig;
  let tls: TlsFiles | undefined;
  try {
    resolved = resolveConfig();
    tls = readTlsFiles(resolved.config); // a missing or unusable certificate stops the start before anything opens
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const { config, file } = resolved;
  await refuseOpenOnPublicAddress(config); // no key on a non-loopback address: exit with how to fix it
  const app = await buildApp(config);
  const { host, port } = parseListenAddress(config.host);
  let stopping = false;
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) {
      app.http.log.warn(`${signal} received while shutting down: exiting at once`);
      process.exit(128 + (os.constants.signals[signal] ?? 0));
    }
    stopping = true;
    app.http.log.info(`${signal} received, shutting down: requests in progress have ${config.shutdownTimeoutMs / 1000}s to finish (a second signal exits at once)`);
    try {
      await app.close();
    } catch (error) {
      app.http.log.error({ err: error }, "shutdown failed");
      process.exit(1);
    }
    app.http.log.info("stopped");
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  if (tls) process.on("SIGHUP", () => reloadTls(app.http, config));
  await app.http.listen({ host, port });
  const details = { home: config.home, threads: config.threads, ...(file && { configFile: file }), ...(tls && { certificate: describeCertificate(tls.cert) }) };
  app.http.log.info(details, "ai-server is ready");
}
