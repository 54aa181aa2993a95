/**
 * A strict reader of Prometheus' text exposition format (version 0.0.4), for tests: every line must be a HELP, a
 * TYPE, a comment or a sample of the family declared before it; names, labels, escapes and values must be well
 * formed; no series twice; histograms cumulative with a `+Inf` bucket equal to their `_count`. Throws, naming the
 * line, on anything else.
 */

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface Sample {
  /** The sample's own name (a histogram's `_bucket`, `_sum`, `_count`). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** A float as Prometheus reads it (Go's ParseFloat: NaN and Inf in any case, e.g. prom-client's "Nan"). */
const VALUE = /^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|nan|[+-]?inf(?:inity)?)$/i;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/** Parses the whole text; families by name. */
export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("the exposition must end with a newline");
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  let current: Family | undefined;
  const lines = text.slice(0, -1).split("\n");
  for (const [index, line] of lines.entries()) {
    const fail = (why: string): never => {
      throw new Error(`line ${index + 1}: ${why}: ${JSON.stringify(line)}`);
    };
    if (line === "") continue;
    if (line.startsWith("#")) {
      const match = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!match) continue; // a plain comment
      const [, keyword, name = "", rest = ""] = match;
      if (!NAME.test(name)) fail("bad metric name");
      const family = families.get(name) ?? { name, type: "untyped" as MetricType, help: "", samples: [] };
      if (families.has(name) && current !== family) fail("a family's lines must be together");
      families.set(name, family);
      current = family;
      if (keyword === "HELP") family.help = unescape(rest, false, fail);
      else {
        if (!TYPES.has(rest)) fail("unknown type");
        if (family.samples.length > 0) fail("TYPE after the family's samples");
        family.type = rest as MetricType;
      }
      continue;
    }
    const sample = parseSample(line, fail);
    if (!current || !belongsTo(sample.name, current)) fail(`sample outside its family (${current?.name ?? "none"})`);
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seen.has(key)) fail("the same series twice");
    seen.add(key);
    current?.samples.push(sample);
  }
  for (const family of families.values()) if (family.type === "histogram") checkHistogram(family);
  return families;
}

/** The value of the one sample named `name` whose labels include `labels`; undefined when there is none. */
export function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const matches = samplesOf(families, name).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matches.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${matches.length} series`);
  return matches[0]?.value;
}

/** Every sample named `name` (a family's, or a histogram's `_bucket` / `_sum` / `_count`). */
export function samplesOf(families: Map<string, Family>, name: string): Sample[] {
  for (const family of families.values()) if (belongsTo(name, family)) return family.samples.filter((s) => s.name === name);
  return [];
}

function belongsTo(sampleName: string, family: Family): boolean {
  if (sampleName === family.name) return family.type !== "histogram";
  const suffixes = family.type === "histogram" ? ["_bucket", "_sum", "_count"] : family.type === "summary" ? ["_sum", "_count"] : [];
  return suffixes.some((suffix) => sampleName === family.name + suffix);
}

function parseSample(line: string, fail: (why: string) => never): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) return fail("bad sample name");
  const name = nameMatch[0];
  let rest = line.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith("{")) {
    rest = rest.slice(1);
    while (!rest.startsWith("}")) {
      const label = /^([^=]*)="((?:[^"\\\n]|\\.)*)"/.exec(rest);
      if (!label) return fail("bad label");
      const [whole, labelName = "", raw = ""] = label;
      if (!LABEL_NAME.test(labelName) || labelName.startsWith("__")) fail(`bad label name ${labelName}`);
      if (labelName in labels) fail(`label ${labelName} twice`);
      labels[labelName] = unescape(raw, true, fail);
      rest = rest.slice(whole.length);
      if (rest.startsWith(",")) rest = rest.slice(1);
      else if (!rest.startsWith("}")) fail("labels must be separated by commas");
    }
    rest = rest.slice(1);
  }
  const parts = rest.split(" ");
  if (parts[0] !== "" || parts.length < 2 || parts.length > 3) fail("expected one space, a value and an optional timestamp");
  const value = parts[1] ?? "";
  if (!VALUE.test(value)) fail("bad value");
  if (parts[2] !== undefined && !/^-?\d+$/.test(parts[2])) fail("bad timestamp");
  const lower = value.toLowerCase().replace(/inity$/, "");
  return { name, labels, value: lower === "nan" ? NaN : lower.endsWith("inf") ? (lower.startsWith("-") ? -Infinity : Infinity) : Number(value) };
}

function unescape(text: string, quotes: boolean, fail: (why: string) => never): string {
  return text.replace(/\\(.?)/g, (_, c: string) => {
    if (c === "\\") return "\\";
    if (c === "n") return "\n";
    if (c === '"' && quotes) return '"';
    return fail(`bad escape \\${c}`);
  });
}

/** Per series: buckets ascending and cumulative, a `+Inf` bucket equal to `_count`, and a `_sum`. */
function checkHistogram(family: Family): void {
  const seriesKey = (labels: Record<string, string>): string => JSON.stringify(Object.entries(labels).filter(([k]) => k !== "le").sort());
  const series = new Map<string, { buckets: Array<[number, number]>; count?: number; sum?: number }>();
  for (const sample of family.samples) {
    const key = seriesKey(sample.labels);
    const entry = series.get(key) ?? { buckets: [] };
    series.set(key, entry);
    if (sample.name.endsWith("_bucket")) {
      const le = sample.labels.le;
      if (le === undefined) throw new Error(`${family.name}: a bucket without le`);
      entry.buckets.push([le === "+Inf" ? Infinity : Number(le), sample.value]);
    } else if (sample.name.endsWith("_count")) entry.count = sample.value;
    else entry.sum = sample.value;
  }
  for (const [key, { buckets, count, sum }] of series) {
    const where = `${family.name}${key}`;
    if (count === undefined || sum === undefined) throw new Error(`${where}: _count or _sum missing`);
    if (buckets.at(-1)?.[0] !== Infinity || buckets.at(-1)?.[1] !== count) throw new Error(`${where}: the +Inf bucket must equal _count`);
    for (let i = 1; i < buckets.length; i++) {
      const [le, n] = buckets[i] ?? [0, 0];
      const [previousLe, previousN] = buckets[i - 1] ?? [0, 0];
      if (!(le > previousLe) || n < previousN) throw new Error(`${where}: buckets must ascend and be cumulative`);
    }
  }
}
