import { spread, type Sample, type Spread } from "./sample.js";

/** The goal: the HTTP path costs at most this fraction of decode speed. */
export const DECODE_GOAL = 0.05;

/** Per repetition, in the same order in every array (index i of each is the same prompt). */
export interface Results {
  direct: Sample[];
  server: Sample[];
  client: Sample[];
  /** JS main-thread busy time during each request, in ms. */
  busyMs: { direct: number[]; http: number[] };
}

const METRICS: { label: string; key: "promptTps" | "decodeTps" | "ttftMs"; digits: number }[] = [
  { label: "prompt tok/s", key: "promptTps", digits: 1 },
  { label: "decode tok/s", key: "decodeTps", digits: 2 },
  { label: "time to first token (ms)", key: "ttftMs", digits: 1 },
];

const LEGEND = [
  "",
  "Cells: median (min–max); ratios: HTTP median / direct median. Direct: node-llama-cpp in this process. Server's counters:",
  "the final NDJSON line's prompt_eval_count/prompt_eval_duration and eval_count/eval_duration (its TTFT is prompt_eval_duration).",
  "Client's clock: arrival of NDJSON lines at an HTTP client in this process (TTFT from sending the request).",
  "Decode tok/s = generated tokens / (end − first token), as Ollama counts eval_count / eval_duration.",
];

const cell = (s: Spread, digits: number): string => `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;

/** Markdown table of medians (min–max) and the HTTP/direct ratio of medians, then the verdict on the decode goal. */
export function report(r: Results): string {
  const rows = [
    "| metric | direct (node-llama-cpp) | HTTP, server's counters | HTTP, client's clock | HTTP/direct (counters) | HTTP/direct (client) |",
    "|---|--:|--:|--:|--:|--:|",
  ];
  for (const m of METRICS) {
    const [direct, server, client] = [r.direct, r.server, r.client].map((samples) => spread(samples.map((s) => s[m.key])));
    rows.push(
      `| ${m.label} | ${cell(direct!, m.digits)} | ${cell(server!, m.digits)} | ${cell(client!, m.digits)} | ` +
        `${(server!.median / direct!.median).toFixed(3)} | ${(client!.median / direct!.median).toFixed(3)} |`,
    );
  }

  const lines = [...LEGEND, "", `Goal: the HTTP path costs ≤ ${DECODE_GOAL * 100}% of single-stream decode speed.`];
  for (const [what, samples] of [["client's clock", r.client], ["server's counters", r.server]] as const) {
    // Ratio within each repetition (same prompt, back to back), then the median: robust to drift between repetitions.
    const paired = spread(samples.map((s, i) => s.decodeTps / r.direct[i]!.decodeTps));
    const perTokenMs = spread(samples.map((s, i) => 1000 / s.decodeTps - 1000 / r.direct[i]!.decodeTps)).median;
    const cost = (1 - paired.median) * 100;
    lines.push(
      `- ${what}: HTTP/direct decode speed, median of per-repetition ratios = ${paired.median.toFixed(3)} ` +
        `(${paired.min.toFixed(3)}–${paired.max.toFixed(3)}): ${Math.abs(cost).toFixed(1)}% ${cost >= 0 ? "slower" : "faster"}, ` +
        `${perTokenMs.toFixed(3)} ms per token → ${paired.median >= 1 - DECODE_GOAL ? "meets the goal" : "MISSES the goal"}`,
    );
  }
  const perToken = (busy: number[], samples: Sample[]): string => spread(busy.map((ms, i) => ms / samples[i]!.evalTokens)).median.toFixed(3);
  lines.push(
    `- JS main thread busy per generated token (event-loop utilisation, median): direct ${perToken(r.busyMs.direct, r.direct)} ms, ` +
      `HTTP ${perToken(r.busyMs.http, r.client)} ms (server and the in-process client together)`,
  );
  lines.push(...countNotes(r));
  return [...rows, ...lines].join("\n");
}

/** Token counts that differ from what was asked make the rates incomparable: say so. */
function countNotes(r: Results): string[] {
  const notes: string[] = [];
  const counts = (samples: Sample[], key: "promptTokens" | "evalTokens"): string => [...new Set(samples.map((s) => s[key]))].join("/");
  for (const key of ["promptTokens", "evalTokens"] as const) {
    const [direct, server, client] = [counts(r.direct, key), counts(r.server, key), counts(r.client, key)];
    if (direct !== server || direct !== client) {
      notes.push(`- note: ${key === "promptTokens" ? "prompt" : "generated"} token counts differ: direct ${direct}, server's counters ${server}, client ${client}` +
        (key === "promptTokens" ? " (rates use each column's own count)" : ""));
    }
  }
  return notes;
}
