import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { formatDuration, formatEta, processorText, table, untilText } from "../../src/cli/format.js";
import { jobsTable, recentJobs } from "../../src/cli/jobs.js";
import { psTable } from "../../src/cli/ps.js";
import { PullProgress } from "../../src/cli/pull-progress.js";
import { describeChoice } from "../../src/cli/pull.js";
import { stats, WordWrap } from "../../src/cli/reply.js";
import type { Job, PsModel } from "../../src/cli/wire.js";

// The CLI's pure text: tables, times, the non-terminal progress lines, word wrapping.

test("PROCESSOR says where a loaded model's bytes are, as ollama ps does", () => {
  assert.equal(processorText(1000, 0), "100% CPU");
  assert.equal(processorText(1000, 1000), "100% GPU");
  assert.equal(processorText(1000, 520), "48%/52% CPU/GPU");
});

test("UNTIL: minutes from now, Forever for the server's ~292 years, Stopping… once passed", () => {
  const now = new Date("2025-01-01T00:00:00Z");
  const later = (ms: number): Date => new Date(now.getTime() + ms);
  assert.equal(untilText(later(4 * 60_000 + 30_000), now), "4 minutes from now");
  assert.equal(untilText(later(90_000), now), "About a minute from now");
  assert.equal(untilText(later(30_000), now), "30 seconds from now");
  assert.equal(untilText(later(3 * 3600_000), now), "3 hours from now");
  assert.equal(untilText(later(9_223_372_036_854), now), "Forever");
  assert.equal(untilText(later(-1), now), "Stopping…");
});

test("durations and times left read like a person would write them", () => {
  assert.equal(formatEta(45), "45s");
  assert.equal(formatEta(190), "3m10s");
  assert.equal(formatEta(7500), "2h05m");
  assert.equal(formatEta(null), "-");
  assert.equal(formatDuration(1_234_567_891), "1.235s");
  assert.equal(formatDuration(130_500_000), "130.5ms");
  assert.equal(formatDuration(850_000), "850µs");
});

test("tables pad columns like Go's tabwriter and trim the ends of lines", () => {
  assert.equal(table(["A", "BB"], [["long value", "x"], ["y", ""]]), "A            BB\nlong value   x\ny\n");
});

test("ps rows: name, 12 hex of the digest, size, processor, context, until", () => {
  const now = new Date("2025-01-01T00:00:00Z");
  const model = {
    name: "chat:latest",
    model: "chat:latest",
    size: 2 * 1024 * 1024,
    size_vram: 0,
    digest: "0ab8498bd87cffff",
    context_length: 2048,
    expires_at: new Date(now.getTime() + 300_000).toISOString(),
    active: 0,
  } as PsModel;
  assert.equal(psTable([model], now), "NAME          ID             SIZE       PROCESSOR   CONTEXT   UNTIL\nchat:latest   0ab8498bd87c   2.00 MiB   100% CPU    2048      5 minutes from now\n");
  assert.match(psTable([{ ...model, active: 1 }], now), /2048 {6}in use\n$/);
});

const job = (over: Partial<Job>): Job => ({
  id: "j1",
  type: "pull",
  model: "hf.co/o/r:Q4_K_M",
  state: "running",
  status: "downloading",
  created_at: "2025-01-01T00:00:00.000Z",
  request: { model: "hf.co/o/r:Q4_K_M", substitute: true, insecure: false },
  warnings: [],
  files: [],
  completed: 512 * 1024 * 1024,
  total: 1024 * 1024 * 1024,
  bytes_per_second: 10 * 1024 * 1024,
  eta_seconds: 51,
  ...over,
});

test("jobs: active ones and those finished within a day; progress, speed, ETA, error", () => {
  const now = new Date("2025-01-03T00:00:00Z");
  const jobs = [
    job({ id: "running" }),
    job({ id: "old", state: "succeeded", status: "success", finished_at: "2025-01-01T00:00:00.000Z" }),
    job({ id: "failed", state: "failed", status: "failed", finished_at: "2025-01-02T12:00:00.000Z", error: { code: "upstream_not_found", message: "repo not found" } }),
  ];
  const recent = recentJobs(jobs, now);
  assert.deepEqual(recent.map((j) => j.id), ["running", "failed"]);
  const lines = jobsTable(recent).split("\n");
  assert.match(lines[0] ?? "", /^ID\s+MODEL\s+STATE\s+PROGRESS\s+SPEED\s+ETA\s+STATUS\/ERROR$/);
  assert.match(lines[1] ?? "", /^running\s+hf\.co\/o\/r:Q4_K_M\s+running\s+50% 512 MiB\/1\.00 GiB\s+10\.0 MiB\/s\s+51s\s+downloading$/);
  assert.match(lines[2] ?? "", /^failed .*failed\s+50% .*\s+-\s+-\s+error: repo not found$/);
});

test("a pull's choice is explained: substitution, the file, local quantization, why", () => {
  const lines = describeChoice({
    source: "huggingface",
    repo: "bartowski/Llama-GGUF",
    substituted_from: "meta-llama/Llama",
    file: "Llama-F16.gguf",
    files: ["Llama-F16.gguf"],
    quantization: "F16",
    quantize_to: "Q4_K_M",
    size: 2 * 1024 ** 3,
    reason: "Q4_K_M asked; the repo has F16",
    requested: "meta-llama/Llama:Q4_K_M",
    alternatives: [],
    budget: { ram: 8 * 1024 ** 3, vram: 0 },
    estimate: { ram: 5 * 1024 ** 3, vram: 0 },
  });
  assert.deepEqual(lines, [
    "meta-llama/Llama has no GGUF file: using bartowski/Llama-GGUF, a GGUF quantization of it",
    "file: bartowski/Llama-GGUF/Llama-F16.gguf (F16, 2.00 GiB)",
    "it will be quantized to Q4_K_M here after the download",
    "why: Q4_K_M asked; the repo has F16",
  ]);
});

/** A non-terminal stream that keeps what is written. */
function collector(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return Object.assign(stream, { text: () => chunks.join("") });
}

test("off a terminal, pull progress is a line per file per 10 %, named once the name is known", () => {
  const out = collector();
  const progress = new PullProgress(out);
  const digest = `sha256:${"ab".repeat(32)}`;
  const mib = 1024 * 1024;
  progress.note("pulling manifest");
  progress.note("pulling manifest");
  for (const completed of [0, 5, 12, 19]) progress.file({ key: digest, total: 100 * mib, completed: completed * mib });
  progress.setName(digest, "model-Q4_K_M.gguf");
  progress.file({ key: digest, total: 100 * mib, completed: 100 * mib });
  progress.quantizing("quantizing F16 model to Q4_K_M", 50, 100);
  progress.note("success");
  const lines = out.text().split("\n").map((line) => line.replace(/, [\d.]+ \w+\/s\)/, ")"));
  assert.deepEqual(lines, [
    "pulling manifest",
    "pulling abababababab: 0% (0 B of 100 MiB)",
    "pulling abababababab: 12% (12.0 MiB of 100 MiB)",
    "pulling model-Q4_K_M.gguf: 100% (100 MiB of 100 MiB)",
    "quantizing F16 model to Q4_K_M: 50% (50/100 tensors)",
    "success",
    "",
  ]);
});

test("word wrap breaks at spaces before the edge and never cuts a word, across streamed pieces", () => {
  let text = "";
  const wrap = new WordWrap(12, (piece) => (text += piece));
  for (const piece of ["The qui", "ck brown fox ", "jumps over\nthe lazy dog"]) wrap.write(piece);
  wrap.end();
  assert.equal(text, "The quick\nbrown fox\njumps over\nthe lazy\ndog");
  for (const line of text.split("\n")) assert.ok(line.length < 12, line);
});

test("--verbose statistics as ollama prints them", () => {
  const lines = stats({
    model: "m",
    created_at: "",
    done: true,
    total_duration: 1_500_000_000,
    load_duration: 500_000_000,
    prompt_eval_count: 26,
    prompt_eval_duration: 130_000_000,
    eval_count: 42,
    eval_duration: 780_000_000,
  }).split("\n");
  assert.deepEqual(lines, [
    "total duration:       1.5s",
    "load duration:        500ms",
    "prompt eval count:    26 token(s)",
    "prompt eval duration: 130ms",
    "prompt eval rate:     200.00 tokens/s",
    "eval count:           42 token(s)",
    "eval duration:        780ms",
    "eval rate:            53.85 tokens/s",
    "",
  ]);
});
