import { SingleBar, Presets } from "cli-progress";
import { clientFor } from "./client.js";

/** `ai-server create NAME -f FILE`: stores the GGUF (uploading it when a server runs) and records the model. */
export async function createModel(name: string, options: { file: string; template?: string; system?: string }): Promise<void> {
  const client = await clientFor();
  try {
    const bar = new SingleBar({ format: "copying model {bar} {percentage}% | {value}/{total} bytes", hideCursor: true }, Presets.shades_classic);
    let started = false;
    const digest = await client.upload(options.file, (done, total) => {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.update(done);
    });
    if (started) bar.stop();
    await client.create(name, digest, { ...(options.template !== undefined && { template: options.template }), ...(options.system !== undefined && { system: options.system }) });
    console.log(`created '${name}' (${client.mode === "server" ? "via the running server" : "in the local store"})`);
  } finally {
    await client.close();
  }
}
