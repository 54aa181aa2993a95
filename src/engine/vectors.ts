/** L2-normalises an embedding, after keeping only its first `dimensions` values when asked (both engines). */
export function normalise(vector: number[], dimensions?: number): number[] {
  const kept = dimensions !== undefined && dimensions > 0 ? vector.slice(0, dimensions) : vector;
  const norm = Math.sqrt(kept.reduce((sum, v) => sum + v * v, 0));
  return norm > 0 ? kept.map((v) => v / norm) : kept;
}
