import { buildApp } from "./app.js";
import { ConfigError, loadConfig, parseListenAddress } from "./config/load.js";

/** Starts the server: read config once, build, listen; on SIGINT/SIGTERM stop taking requests and unload models. */
export async function serve(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const app = await buildApp(config);
  const { host, port } = parseListenAddress(config.host);
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    app.http.log.info(`${signal} received, shutting down`);
    await app.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));
  await app.http.listen({ host, port });
  app.http.log.info({ home: config.home, threads: config.threads }, "ai-server is ready");
}
