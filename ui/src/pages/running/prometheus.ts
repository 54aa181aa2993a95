/**
 * A small reader of Prometheus' text exposition format (what GET /metrics answers): samples with their labels, and
 * sums over labels. Comments (# HELP, # TYPE) and timestamps are skipped; NaN and ±Inf are kept as numbers.
 */

/** One sample line: `name{label="value",…} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

/** Every sample of a scrape, in order; lines that do not parse are skipped. */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const sample = parseLine(line);
    if (sample) samples.push(sample);
  }
  return samples;
}

/** The sum of a metric's samples over all their labels (0 when it has none yet). */
export function sumOf(samples: readonly Sample[], name: string): number {
  let sum = 0;
  for (const sample of samples) if (sample.name === name && Number.isFinite(sample.value)) sum += sample.value;
  return sum;
}

function parseLine(line: string): Sample | undefined {
  const name = NAME.exec(line)?.[0];
  if (name === undefined) return undefined;
  let at = name.length;
  const labels: Record<string, string> = {};
  if (line[at] === "{") {
    const end = parseLabels(line, at + 1, labels);
    if (end === undefined) return undefined;
    at = end;
  }
  const value = parseValue(line.slice(at).trim().split(/\s+/)[0] ?? "");
  return value === undefined ? undefined : { name, labels, value };
}

/** Reads `a="x",b="y"}` from `start`; answers the index after the `}`. */
function parseLabels(line: string, start: number, labels: Record<string, string>): number | undefined {
  let at = start;
  for (;;) {
    while (line[at] === " " || line[at] === ",") at++;
    if (line[at] === "}") return at + 1;
    const label = NAME.exec(line.slice(at))?.[0];
    if (label === undefined || line[at + label.length] !== "=" || line[at + label.length + 1] !== '"') return undefined;
    at += label.length + 2;
    let value = "";
    for (;;) {
      const char = line[at];
      if (char === undefined) return undefined;
      at++;
      if (char === '"') break;
      if (char === "\\") {
        const escaped = line[at++];
        value += escaped === "n" ? "\n" : (escaped ?? "");
      } else {
        value += char;
      }
    }
    labels[label] = value;
  }
}

function parseValue(text: string): number | undefined {
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (text === "") return undefined;
  const value = Number(text);
  return Number.isNaN(value) ? undefined : value;
}
