import { formatBytes } from "../domain/byte-size.js";
import { connectOrStart, type Connection } from "./connection.js";
import { PullProgress, type Output } from "./pull-progress.js";
import type { Job, PullChoice, PullLine } from "./wire.js";

/** `ai-server pull NAME [--exact]`: pulls through the running server, or a server started in this process. */
export async function pullCommand(name: string, options: { exact?: boolean }): Promise<void> {
  const connection = await connectOrStart();
  try {
    await pullModel(connection, name, { exact: options.exact ?? false, out: process.stdout });
  } finally {
    await connection.close();
  }
}

/**
 * Pulls `name` (POST /api/pull) and shows its progress on `out`: the choice and why, warnings, a bar per file, the
 * quantization, "success". A failure throws. Ctrl-C stops reading and exits 130, saying what becomes of the pull:
 * a running server carries on with the job; the in-process one stops, and the download resumes where it stopped
 * at the next pull of the name or the next server start.
 */
export async function pullModel(connection: Connection, name: string, options: { exact: boolean; out: Output }): Promise<void> {
  const progress = new PullProgress(options.out);
  const names = new FileNames(connection, progress);
  const controller = new AbortController();
  const interrupt = (): void => controller.abort();
  process.once("SIGINT", interrupt);
  try {
    const body = { model: name, stream: true, ...(options.exact && { substitute: false }) };
    for await (const line of connection.api.ndjson<PullLine>("/api/pull", body, controller.signal)) {
      if (line.job !== undefined) names.job = line.job;
      if (line.choice) {
        progress.note(line.status);
        for (const text of describeChoice(line.choice)) progress.note(text);
        names.lookUp();
      } else if (line.digest !== undefined && line.total !== undefined) {
        if (line.digest === "0" || line.status.startsWith("quantizing")) progress.quantizing(line.status, line.completed ?? 0, line.total);
        else {
          progress.file({ key: line.digest, total: line.total, completed: line.completed ?? 0 });
          names.want(line.digest);
        }
      } else progress.note(line.status);
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error;
    progress.stop();
    return interrupted(connection, name, names.job, options.out);
  } finally {
    process.off("SIGINT", interrupt);
    progress.stop();
  }
}

/** What the CLI says about a pull's choice: why this file, and any substitution or local quantization. */
export function describeChoice(choice: PullChoice): string[] {
  const lines: string[] = [];
  if (choice.substituted_from) lines.push(`${choice.substituted_from} has no GGUF file: using ${choice.repo}, a GGUF quantization of it`);
  if (choice.file) {
    const parts = (choice.files?.length ?? 1) > 1 ? ` and ${(choice.files?.length ?? 1) - 1} more part(s)` : "";
    const size = choice.size !== undefined ? `, ${formatBytes(choice.size)}` : "";
    lines.push(`file: ${choice.repo}/${choice.file}${parts}${choice.quantization ? ` (${choice.quantization}${size})` : ""}`);
  }
  if (choice.quantize_to) lines.push(`it will be quantized to ${choice.quantize_to} here after the download`);
  lines.push(`why: ${choice.reason}`);
  return lines;
}

async function interrupted(connection: Connection, name: string, job: string | undefined, out: Output): Promise<never> {
  if (connection.inProcess) {
    out.write(`\ninterrupted: the download stops now; it resumes from where it stopped at the next \`ai-server pull ${name}\` or server start\n`);
    await Promise.race([connection.close(), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
  } else {
    const which = job !== undefined ? ` as job ${job}` : "";
    out.write(`\ninterrupted: the pull continues in the server${which} (\`ai-server jobs\` shows it)\n`);
  }
  process.exit(130);
}

/** The file names of a pull's digests, looked up in its job (the pull's lines name files by digest only). */
class FileNames {
  job: string | undefined;
  private readonly asked = new Set<string>();
  private lookup: Promise<void> | undefined;

  constructor(private readonly connection: Connection, private readonly progress: PullProgress) {}

  /** Looks `digest` up once, in the background; until then (or if the job does not say) the short digest shows. */
  want(digest: string): void {
    if (this.progress.hasName(digest) || this.asked.has(digest) || this.lookup) return;
    this.asked.add(digest);
    this.lookUp();
  }

  /** Reads the job's files and names their digests, in the background. */
  lookUp(): void {
    if (this.job === undefined || this.lookup) return;
    const job = this.job;
    this.lookup = this.connection.api
      .json<Job>("GET", `/api/jobs/${encodeURIComponent(job)}`)
      .then((found) => {
        for (const file of found.files ?? []) if (file.digest && file.name) this.progress.setName(file.digest, file.name);
      })
      .catch(() => undefined)
      .finally(() => (this.lookup = undefined));
  }
}
