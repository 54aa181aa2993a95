import { spawn } from "node:child_process";
import { QuantizationError, RequestCancelledError } from "../domain/errors.js";

/** How far the tool is, in tensors written. */
export interface QuantizeProgress {
  completed: number;
  total: number;
}

/** One run of the tool: what it reads and writes, the type (the tool's name for it) and how many threads it uses. */
export interface ToolRun {
  binary: string;
  input: string;
  output: string;
  /** The tool's name for the type (Q4_K_M). */
  type: string;
  threads: number;
  signal?: AbortSignal;
  onProgress?(progress: QuantizeProgress): void;
}

/** Output lines kept for a failure's message. */
const TAIL_LINES = 8;
/** How long a tool that was asked to stop (SIGTERM) may take before it is killed. */
const KILL_AFTER_MS = 3000;

/**
 * One tensor's line, printed as the tool starts it and ended when the tensor is written:
 * `[  12/ 201]                 blk.0.attn_k.weight - [  256,   256,     1,     1], type =    f16, converting to q8_0 .. size = …`
 */
const TENSOR_LINE = /^\[\s*(\d+)\s*\/\s*(\d+)\s*\]/;

/**
 * Runs llama.cpp's quantize tool (`llama-quantize INPUT OUTPUT TYPE THREADS`) to completion, reporting each tensor it
 * has written. The tool is stopped when `signal` aborts (RequestCancelledError); a tool that fails gives a
 * QuantizationError whose message ends with its last output lines.
 */
export function runQuantizeTool(run: ToolRun): Promise<void> {
  if (run.signal?.aborted) return Promise.reject(new RequestCancelledError());
  return new Promise((resolve, reject) => {
    const child = spawn(run.binary, [run.input, run.output, run.type, String(run.threads)], { stdio: ["ignore", "pipe", "pipe"] });
    const tail: string[] = [];
    let partial = "";
    let reported = -1;
    /** Tensor n's line begins as the tool starts it (n - 1 are written) and ends once it is written (n are). */
    const report = (line: string, ended: boolean): void => {
      const match = TENSOR_LINE.exec(line.trim());
      if (!match) return;
      const completed = Number(match[1]) - (ended ? 0 : 1);
      if (completed === reported) return;
      reported = completed;
      run.onProgress?.({ completed, total: Number(match[2]) });
    };
    const onLine = (line: string): void => {
      const trimmed = line.trim();
      if (trimmed === "") return;
      tail.push(trimmed);
      if (tail.length > TAIL_LINES) tail.shift();
      report(trimmed, true);
    };
    const onData = (chunk: Buffer): void => {
      const lines = (partial + chunk.toString("utf8")).split("\n");
      partial = lines.pop() ?? "";
      lines.forEach(onLine);
      report(partial, false);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);

    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      child.kill("SIGTERM");
      killTimer = setTimeout(() => child.kill("SIGKILL"), KILL_AFTER_MS);
      killTimer.unref();
    };
    run.signal?.addEventListener("abort", onAbort, { once: true });

    let failedToStart: Error | undefined;
    child.once("error", (error) => (failedToStart = error));
    child.once("close", (code, signal) => {
      clearTimeout(killTimer);
      run.signal?.removeEventListener("abort", onAbort);
      onLine(partial);
      if (run.signal?.aborted) reject(new RequestCancelledError());
      else if (failedToStart) reject(new QuantizationError(`cannot run the quantize tool ${run.binary}: ${failedToStart.message}`));
      else if (code === 0) resolve();
      else {
        const how = signal ? `killed by ${signal}` : `exit code ${code}`;
        reject(new QuantizationError(`quantizing to ${run.type} failed (${how}): ${tail.join(" / ") || "the tool printed nothing"}`));
      }
    });
  });
}
