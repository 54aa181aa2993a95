// `npm run test:postgres`: the whole suite (exactly `npm test`) with the server's state in PostgreSQL. A temporary
// PostgreSQL (the distribution's binaries, as the tests' own helper starts it) runs for the duration; every test
// server gets a fresh database on it (AI_SERVER_TEST_DATABASE_URL, read by test/helpers/start-server.ts).
// Run with tsx (package.json does): the helper is TypeScript.
import { spawn } from "node:child_process";
import { PostgresServer, postgresSkipReason } from "../test/helpers/postgres-server.ts";

const reason = postgresSkipReason();
if (reason !== undefined) {
  process.stderr.write(`test:postgres: ${reason}\n`);
  process.exit(1);
}
const server = await PostgresServer.start();
process.stderr.write(`test:postgres: PostgreSQL on ${server.url()}\n`);
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const child = spawn(npm, ["test"], { stdio: "inherit", env: { ...process.env, AI_SERVER_TEST_DATABASE_URL: server.url() } });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
const [code, signal] = await new Promise((resolve) => child.once("exit", (...result) => resolve(result)));
await server.close();
process.exit(code ?? (signal ? 1 : 0));
