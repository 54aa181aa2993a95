import { Command } from "commander";
import { version } from "../version.js";
import { clientFor } from "./client.js";
import { configCommand } from "./config.js";
import { createModel } from "./create.js";
import { cancelJob, listJobs } from "./jobs.js";
import { createKeyCommand, listKeysCommand, positiveInteger, revokeKeyCommand } from "./keys.js";
import { listRunning } from "./ps.js";
import { pullCommand } from "./pull.js";
import { runCommand } from "./run.js";
import { showCommand } from "./show.js";
import { stopModel } from "./stop.js";

const program = new Command()
  .name("ai-server")
  .description("Self-hosted LLM inference server with Ollama- and OpenAI-compatible APIs.\nSettings come from AI_SERVER_* environment variables and an optional config file (see the README; `ai-server config` shows them).")
  .version(version);

program.command("serve", { isDefault: true }).description("start the server (AI_SERVER_HOST, default 127.0.0.1:11434)").action(async () => (await import("../main.js")).serve());

program
  .command("config")
  .description("print every setting's effective value and where it came from (default, config file, environment); secrets masked")
  .option("--json", "print them as JSON")
  .action(configCommand);

program
  .command("create")
  .description("create a model from a local GGUF file")
  .argument("<name>", "model name, e.g. mymodel or mymodel:q8")
  .requiredOption("-f, --file <path>", "GGUF file")
  .option("--template <text>", "prompt template override ({{ .System }}, {{ .Prompt }})")
  .option("--system <text>", "default system prompt")
  .option("-q, --quantize <type>", "quantize an F16, BF16 or F32 GGUF first, e.g. q4_K_M, q8_0 (llama.cpp's quantize tool)")
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

program
  .command("pull")
  .description("pull a model by name: hf.co/owner/repo[:quant], owner/repo[:quant], or an Ollama library name (llama3.2:1b)")
  .argument("<name>")
  .option("--exact", "refuse to use a GGUF quantization from another repo when the named repo has no GGUF file")
  .action(pullCommand);

const jobs = program
  .command("jobs")
  .description("list the server's background jobs (pulls): active ones and those finished in the last day")
  .option("--all", "every job")
  .option("--json", "print the jobs as JSON")
  .action(listJobs);
jobs.command("cancel").description("cancel a job (its partial downloads are removed)").argument("<id>").action(cancelJob);

program
  .command("run")
  .description("chat with a model (pulled first when missing); with a prompt, answer it and exit")
  .argument("<name>")
  .argument("[prompt...]", "the prompt (stdin is read too when it is not a terminal)")
  .option("--verbose", "show timings and token rates after each answer")
  .option("--think", "ask the model to think first (its thinking shows dimmed)")
  .option("--format <format>", 'answer format, e.g. "json"')
  .option("--nowordwrap", "do not wrap words at the terminal's width")
  .action(runCommand);

const keys = program
  .command("keys")
  .description("manage API keys (through the running server, or on the store under AI_SERVER_HOME when none runs)");
keys
  .command("create")
  .description("create an API key and print it (only its hash is kept: this is the one time it is shown)")
  .requiredOption("--name <name>", "what the key is for")
  .requiredOption("--scope <scope>", "inference (generate, chat, embed, the /v1 routes, list, show) or admin (everything)")
  .option("--models <names>", "comma separated: the only models it may see and use")
  .option("--rpm <n>", "requests per minute", positiveInteger)
  .option("--tpm <n>", "tokens per minute", positiveInteger)
  .option("--max-parallel <n>", "requests at once", positiveInteger)
  .option("--expires <when>", "a span (30d, 12h, 1w) or a date (2026-01-31)")
  .option("--json", "print the key and its record as JSON")
  .action(createKeyCommand);
keys.command("list").alias("ls").description("list API keys (never their secrets)").option("--json", "print the keys as JSON").action(listKeysCommand);
keys.command("revoke").description("revoke an API key at once").argument("<id>", "the key's id (keys list)").action(revokeKeyCommand);

program.command("ps").description("list the models loaded in the running server").action(listRunning);

program
  .command("show")
  .description("show a model's details")
  .argument("<name>")
  .option("--modelfile", "print its Modelfile")
  .option("--parameters", "print its parameters")
  .option("--template", "print its template")
  .option("--system", "print its system prompt")
  .option("--license", "print its license")
  .option("--verbose", "also print every GGUF header key")
  .action(showCommand);

program.command("stop").description("unload a running model").argument("<name>").action(stopModel);

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
