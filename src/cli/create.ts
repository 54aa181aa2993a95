import { SingleBar, Presets } from "cli-progress";
import { clientFor } from "./client.js";

/**
 * `ai-server create NAME -f FILE [-q TYPE]`: stores the GGUF (uploading it when a server runs), quantizes it when
 * asked (the server does, when one runs), and records the model.
 */
export async function createModel(name: string, options: { file: string; template?: string; system?: string; quantize?: string }): Promise<void> {
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
    const quantizing = new SingleBar({ format: "{status} {bar} {percentage}% | {value}/{total} tensors", hideCursor: true }, Presets.shades_classic);
    let quantizeStarted = false;
    try {
      await client.create(name, digest, {
        ...(options.template !== undefined && { template: options.template }),
        ...(options.system !== undefined && { system: options.system }),
        ...(options.quantize !== undefined && {
          quantize: options.quantize,
          onQuantizeProgress(status, completed, total) {
            if (!quantizeStarted) quantizing.start(total, completed, { status });
            quantizeStarted = true;
            quantizing.update(completed, { status });
          },
        }),
      });
    } finally {
      if (quantizeStarted) quantizing.stop();
    }
    console.log(`created '${name}' (${client.mode === "server" ? "via the running server" : "in the local store"})`);
  } finally {
    await client.close();
  }
}
