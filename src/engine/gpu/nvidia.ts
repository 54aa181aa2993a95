import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

/** An NVIDIA card as nvidia-smi reports it. */
export interface NvidiaGpu {
  name: string;
  /** "9.0" for an H100 (sm_90), "8.0" for an A100. */
  computeCap: string;
}

export interface NvidiaInfo {
  gpus: NvidiaGpu[];
  /** The newest CUDA version the driver runs ("13.0"), from nvidia-smi's header; undefined when not shown. */
  driverCuda?: string;
}

/** What nvidia-smi says about this machine's cards; undefined when there is no nvidia-smi or it fails. */
export async function queryNvidia(): Promise<NvidiaInfo | undefined> {
  try {
    const [list, header] = await Promise.all([
      run("nvidia-smi", ["--query-gpu=name,compute_cap", "--format=csv,noheader"], { timeout: 10_000 }),
      run("nvidia-smi", [], { timeout: 10_000 }),
    ]);
    return parseNvidiaSmi(list.stdout, header.stdout);
  } catch {
    return undefined;
  }
}

/** Parses `nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader` and plain `nvidia-smi` output. */
export function parseNvidiaSmi(csv: string, header: string): NvidiaInfo {
  const gpus = csv
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .map((line) => {
      const cut = line.lastIndexOf(",");
      return { name: line.slice(0, cut).trim(), computeCap: line.slice(cut + 1).trim() };
    });
  const cuda = /CUDA Version:\s*([\d.]+)/.exec(header)?.[1];
  return { gpus, ...(cuda !== undefined && { driverCuda: cuda }) };
}
