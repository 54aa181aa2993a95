import { Command } from "commander";
import { version } from "../version.js";
import { clientFor } from "./client.js";
import { createModel } from "./create.js";

const program = new Command()
  .name("ai-server")
  .description("Self-hosted LLM inference server with Ollama- and OpenAI-compatible APIs.\nSettings come from AI_SERVER_* environment variables (see the README).")
  .version(version);

program.command("serve", { isDefault: true }).description("start the server (AI_SERVER_HOST, default 127.0.0.1:11434)").action(async () => (await import("../main.js")).serve());

program
  .command("create")
  .description("create a model from a local GGUF file")
  .argument("<name>", "model name, e.g. mymodel or mymodel:q8")
  .requiredOption("-f, --file <path>", "GGUF file")
  .option("--template <text>", "prompt template override ({{ .System }}, {{ .Prompt }})")
  .option("--system <text>", "default system prompt")
  .action(createModel);

program
  .command("list")
  .alias("ls")
  .description("list models")
  .action(async () => {
    const client = await clientFor();
    try {
      const rows = await client.list();
      console.log(["NAME".padEnd(40), "SIZE".padStart(10), "  PARAMS".padEnd(10), " QUANT"].join(""));
      for (const m of rows) console.log(`${m.name.padEnd(40)}${formatBytes(m.size).padStart(10)}  ${m.parameterSize.padEnd(9)} ${m.quantization}`);
    } finally {
      await client.close();
    }
  });

program
  .command("rm")
  .description("delete a model")
  .argument("<name>")
  .action(async (name: string) => {
    const client = await clientFor();
    try {
      await client.delete(name);
      console.log(`deleted '${name}'`);
    } finally {
      await client.close();
    }
  });

program
  .command("cp")
  .description("copy a model under a new name")
  .argument("<source>")
  .argument("<destination>")
  .action(async (source: string, destination: string) => {
    const client = await clientFor();
    try {
      await client.copy(source, destination);
      console.log(`copied '${source}' to '${destination}'`);
    } finally {
      await client.close();
    }
  });

function formatBytes(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`Error: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
