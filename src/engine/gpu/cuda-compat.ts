import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { NvidiaInfo } from "./nvidia.js";

/**
 * What a prebuilt CUDA library of node-llama-cpp can run, by node-llama-cpp version: machine code (SASS) for some
 * GPU architectures, and PTX that a driver can compile for newer ones if it runs that CUDA version. Measured by
 * reading the shipped libggml-cuda.so (see the README's GPU notes), whose sha256 is recorded: a library replaced by
 * one built for the card is not judged, nor is an unknown version.
 */
export const PREBUILT_CUDA_CODE: Readonly<Record<string, { sass: readonly string[]; ptxCuda: string; sha256: string }>> = {
  "3.21.1": { sass: ["8.6", "8.9", "12.0", "12.1"], ptxCuda: "13.1", sha256: "b44c49ee361064e04c6da297bd820931ee3f0b580c78f19d3b548c2b89a5972c" },
};

/**
 * sha256 (hex) of the libggml-cuda.so that node-llama-cpp's prebuilt CUDA package for this platform holds, or
 * undefined when there is none (~0.5 s for its 159 MB; only asked when a CUDA runtime is in use).
 */
export async function prebuiltCudaLibraryDigest(): Promise<string | undefined> {
  try {
    const variant = `${process.platform}-${process.arch}-cuda`;
    const nodeLlamaCpp = createRequire(fileURLToPath(import.meta.resolve("node-llama-cpp")));
    const entry = nodeLlamaCpp.resolve(`@node-llama-cpp/${variant}`); // <package>/dist/index.js
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(path.join(path.dirname(path.dirname(entry)), "bins", variant, "libggml-cuda.so"))) hash.update(chunk as Buffer);
    return hash.digest("hex");
  } catch {
    return undefined;
  }
}

export type CudaVerdict = { ok: true } | { ok: false; reason: string };

/**
 * Whether node-llama-cpp's prebuilt CUDA library can run kernels on every card here. A card is covered by machine
 * code for its exact architecture, or by the PTX when the driver runs at least the PTX's CUDA version and the card
 * is not older than the oldest architecture built (PTX compiles forward only). A local build (`node-llama-cpp source
 * download --gpu cuda`) is built for the card and always passes, as do versions without a known list and a library
 * whose `libraryDigest` is not the shipped one's (replaced by a build for the card).
 */
export function prebuiltCudaVerdict(nodeLlamaCppVersion: string, buildType: "prebuilt" | "localBuild", nvidia: NvidiaInfo, libraryDigest?: string): CudaVerdict {
  const code = PREBUILT_CUDA_CODE[nodeLlamaCppVersion];
  if (buildType !== "prebuilt" || code === undefined) return { ok: true };
  if (libraryDigest !== undefined && libraryDigest !== code.sha256) return { ok: true };
  const number = (version: string): number => {
    const [major = 0, minor = 0] = version.split(".").map(Number);
    return major * 100 + minor;
  };
  const oldest = Math.min(...code.sass.map(number));
  const ptxRuns = nvidia.driverCuda !== undefined && number(nvidia.driverCuda) >= number(code.ptxCuda);
  const unsupported = nvidia.gpus.filter((gpu) => !code.sass.includes(gpu.computeCap) && !(ptxRuns && number(gpu.computeCap) >= oldest));
  if (unsupported.length === 0) return { ok: true };
  const cards = unsupported.map((gpu) => `${gpu.name} (sm_${gpu.computeCap.replace(".", "")})`).join(", ");
  const archs = code.sass.map((cap) => `sm_${cap.replace(".", "")}`).join("/");
  const driver = nvidia.driverCuda === undefined ? "a driver whose CUDA version is unknown" : `a CUDA ${nvidia.driverCuda} driver`;
  return {
    ok: false,
    reason:
      `node-llama-cpp ${nodeLlamaCppVersion}'s prebuilt CUDA library has machine code for ${archs} only, and PTX that needs a CUDA ${code.ptxCuda} driver; ` +
      `${cards} with ${driver} cannot run it`,
  };
}
