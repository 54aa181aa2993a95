import { connectOrStart } from "./connection.js";
import type { ShowResponse } from "./wire.js";

/** The fields `ai-server show` can print alone. */
export type ShowField = "modelfile" | "parameters" | "template" | "system" | "license";

/** `ai-server show NAME [--modelfile|--parameters|--template|--system|--license|--verbose]`, like `ollama show`. */
export async function showCommand(name: string, options: Partial<Record<ShowField | "verbose", boolean>>): Promise<void> {
  const connection = await connectOrStart();
  try {
    const show = await connection.api.json<ShowResponse>("POST", "/api/show", { model: name });
    const field = (["modelfile", "parameters", "template", "system", "license"] as const).find((f) => options[f]);
    if (field === undefined) process.stdout.write(showInfo(show, options.verbose ?? false));
    else if (field === "parameters" && !show.parameters) console.log("No parameters were specified for this model.");
    else if (show[field]) process.stdout.write(withNewline(show[field] ?? ""));
  } finally {
    await connection.close();
  }
}

/** Lines of long texts (system prompt, license) shown in the summary; the flags print them whole. */
const PREVIEW_LINES = 2;

/** The summary: Model, Capabilities, Parameters, System, License (first lines), and with `verbose` every header key. */
export function showInfo(show: ShowResponse, verbose: boolean): string {
  const info = show.model_info;
  const architecture = String(info["general.architecture"] ?? show.details.family);
  const model: Array<[string, unknown]> = [
    ["architecture", architecture],
    ["parameters", show.details.parameter_size],
    ["context length", info[`${architecture}.context_length`]],
    ["embedding length", info[`${architecture}.embedding_length`]],
    ["quantization", show.details.quantization_level],
  ];
  const sections = [section("Model", model.filter(([, value]) => value !== undefined && value !== "").map(([key, value]) => [key, String(value)]))];
  sections.push(section("Capabilities", show.capabilities.map((c) => [c])));
  if (show.parameters) sections.push(section("Parameters", show.parameters.split("\n").map(splitParameter)));
  if (show.system) sections.push(section("System", preview(show.system)));
  if (show.license) sections.push(section("License", preview(show.license)));
  if (verbose) {
    const keys = Object.keys(info).sort();
    sections.push(section("Metadata", keys.map((key) => [key, metadataValue(info[key])])));
  }
  return sections.join("");
}

/** "  Title" then its rows indented, the first column padded; a blank line after. */
function section(title: string, rows: string[][]): string {
  const width = Math.max(0, ...rows.filter((r) => r.length > 1).map((r) => (r[0] ?? "").length));
  const lines = rows.map((r) => `    ${r.length > 1 ? `${(r[0] ?? "").padEnd(width)}    ${r.slice(1).join(" ")}` : (r[0] ?? "")}`.trimEnd());
  return [`  ${title}`, ...lines, ""].join("\n") + "\n";
}

/** The server's parameter line ("name<spaces>value") as [name, value]. */
function splitParameter(line: string): string[] {
  const match = /^(\S+)\s+(.*)$/.exec(line);
  return match ? [match[1] ?? "", match[2] ?? ""] : [line];
}

function preview(text: string): string[][] {
  const lines = text.trim().split("\n");
  return [...lines.slice(0, PREVIEW_LINES), ...(lines.length > PREVIEW_LINES ? ["..."] : [])].map((l) => [l]);
}

function metadataValue(value: unknown): string {
  if (value === null) return "[…]";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function withNewline(text: string): string {
  return text.endsWith("\n") ? text : `${text}\n`;
}
