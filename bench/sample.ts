/** What every request asks for. */
export interface Workload {
  /** Tokens the model reads, BOS included. */
  promptTokens: number;
  /** Tokens generated (num_predict / maxTokens). */
  maxTokens: number;
  contextSize: number;
}

/** One request's speed, computed the way Ollama's counters are. */
export interface Sample {
  promptTokens: number;
  evalTokens: number;
  /** Start of the request → first generated token. */
  ttftMs: number;
  /** promptTokens / ttft. */
  promptTps: number;
  /** evalTokens / (end − first token), as Ollama's eval_count / eval_duration. */
  decodeTps: number;
}

/** Times in milliseconds on one clock. */
export function sampleOf(t: { promptTokens: number; evalTokens: number; start: number; first: number; end: number }): Sample {
  const ttftMs = t.first - t.start;
  return {
    promptTokens: t.promptTokens,
    evalTokens: t.evalTokens,
    ttftMs,
    promptTps: t.promptTokens / (ttftMs / 1000),
    decodeTps: t.evalTokens / ((t.end - t.first) / 1000),
  };
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** Runs `work` and measures how long the JS main thread was busy meanwhile (event-loop utilisation), in ms. */
export async function withLoopBusy<T>(work: () => Promise<T>): Promise<{ result: T; busyMs: number }> {
  const before = performance.eventLoopUtilization();
  const result = await work();
  return { result, busyMs: performance.eventLoopUtilization(before).active };
}
