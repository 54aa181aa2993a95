import { loadConfig } from "../config/load.js";
import { cliApiKey } from "./api-key.js";
import { answers, serverUrl } from "./client.js";
import { ServerApi } from "./http-client.js";

/** A server for a command to talk to over HTTP: the one running at AI_SERVER_HOST, or one started in this process. */
export interface Connection {
  readonly api: ServerApi;
  /** True when the server is this process (nothing answered at AI_SERVER_HOST). */
  readonly inProcess: boolean;
  /** Stops the in-process server (its downloads stop and resume at its next start); nothing for a running one. */
  close(): Promise<void>;
}

/** Where AI_SERVER_HOST points, and whether a server answers there. */
export async function findServer(): Promise<{ base: string; running: boolean }> {
  const base = serverUrl(loadConfig());
  return { base, running: await answers(base) };
}

/** The running server, or undefined after saying on `notice` that none runs (for commands that need one). */
export async function runningServer(notice: NodeJS.WritableStream = process.stdout): Promise<ServerApi | undefined> {
  const { base, running } = await findServer();
  if (running) return new ServerApi(base, cliApiKey(loadConfig()));
  notice.write(`no server is running at ${base}\n`);
  return undefined;
}

/**
 * The running server when one answers; otherwise the real app, built over the same AI_SERVER_HOME and listening on
 * a free loopback port for as long as the command runs, reached over HTTP exactly as a remote server is. Says so on
 * `notice`. The in-process app does not log (its log would mix with the command's output); failures reach the
 * command through the API.
 */
export async function connectOrStart(notice: NodeJS.WritableStream = process.stderr): Promise<Connection> {
  const { base, running } = await findServer();
  if (running) return { api: new ServerApi(base, cliApiKey(loadConfig())), inProcess: false, close: async () => {} };
  notice.write(`no server at ${base}; running one in this process\n`);
  const { buildApp } = await import("../app.js");
  // Plain HTTP on loopback for this process alone, whatever AI_SERVER_TLS_* say (they are for the served address).
  const app = await buildApp(loadConfig(process.env, { logLevel: "silent", tlsCert: "", tlsKey: "" }));
  const address = await app.http.listen({ host: "127.0.0.1", port: 0 });
  let closing: Promise<void> | undefined;
  return {
    // A key of this process's memory only: the store's keys may require one, and the command is this server's owner.
    api: new ServerApi(address, app.services.keys.temporaryAdminKey()),
    inProcess: true,
    close() {
      closing ??= (async () => {
        const closed = app.close();
        // Our own fetch keeps idle connections open; nothing else uses this server.
        app.http.server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}
