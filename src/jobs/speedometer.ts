/** Speed of a transfer over the last few seconds, from samples of the bytes done so far. */
export class Speedometer {
  private readonly samples: Array<{ at: number; bytes: number }> = [];

  constructor(private readonly windowMs = 5000) {}

  record(bytes: number, at = Date.now()): void {
    const last = this.samples[this.samples.length - 1];
    if (last && bytes < last.bytes) this.samples.length = 0; // started over
    this.samples.push({ at, bytes });
    while (this.samples.length > 2 && (this.samples[0]?.at ?? at) < at - this.windowMs) this.samples.shift();
  }

  /** Bytes per second over the window; 0 until two samples are a moment apart. */
  bytesPerSecond(now = Date.now()): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at - first.at < 200) return 0;
    if (now - last.at > this.windowMs) return 0; // nothing arrived lately
    return ((last.bytes - first.bytes) * 1000) / (last.at - first.at);
  }
}
