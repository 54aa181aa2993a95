import { readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";

/** What is recorded of a running llama-server, to find it again after this server died without stopping it. */
interface Entry {
  pid: number;
  binary: string;
  socketPath: string;
}

/**
 * One file per running llama-server process under a directory of AI_SERVER_HOME (`run/llama-server/<pid>.json`).
 * A server that is killed (SIGKILL, the OOM killer) cannot stop its children, which would keep their memory for
 * ever; the next start reaps them: a recorded pid whose command line still names the recorded binary and socket is
 * killed, and its socket removed. A pid reused by another program is left alone.
 */
export class ProcessRegistry {
  constructor(private readonly dir: string) {}

  async add(entry: Entry): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFile(this.file(entry.pid), JSON.stringify(entry));
  }

  async remove(pid: number): Promise<void> {
    await rm(this.file(pid), { force: true });
  }

  /** Kills the recorded processes that are still the llama-servers recorded; returns their pids. */
  async reap(): Promise<number[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const reaped: number[] = [];
    for (const name of names.filter((n) => n.endsWith(".json"))) {
      const file = path.join(this.dir, name);
      const entry = await readFile(file, "utf8").then((text) => JSON.parse(text) as Entry, () => undefined);
      if (entry && Number.isInteger(entry.pid) && isTheRecordedProcess(entry)) {
        try {
          process.kill(entry.pid, "SIGKILL");
          reaped.push(entry.pid);
        } catch {
          // gone meanwhile
        }
      }
      if (entry) await rm(entry.socketPath, { force: true });
      await rm(file, { force: true });
    }
    return reaped;
  }

  private file(pid: number): string {
    return path.join(this.dir, `${pid}.json`);
  }
}

/** Whether `pid` runs the recorded binary with the recorded socket (from /proc; false where there is no /proc). */
function isTheRecordedProcess(entry: Entry): boolean {
  try {
    const args = readFileSync(`/proc/${entry.pid}/cmdline`, "utf8").split("\0");
    return args[0] === entry.binary && args.includes(entry.socketPath);
  } catch {
    return false;
  }
}
