/**
 * GPU checks at start-up. There is no GPU on the machines these tests run on, so nvidia-smi's output is given as
 * text, and the engine test stands in a query that reports an NVIDIA card which no build here can use.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { PREBUILT_CUDA_CODE, prebuiltCudaLibraryDigest, prebuiltCudaVerdict } from "../../src/engine/gpu/cuda-compat.js";
import { parseNvidiaSmi, type NvidiaInfo } from "../../src/engine/gpu/nvidia.js";
import { LlamaCppEngine } from "../../src/engine/llama-cpp/llama-cpp-engine.js";

const HEADER = `
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 580.82.07              Driver Version: 580.82.07      CUDA Version: 13.0     |
+-----------------------------------------+------------------------+----------------------+`;

test("nvidia-smi's card list and driver CUDA version are read, names with commas included", () => {
  const info = parseNvidiaSmi("NVIDIA H100 80GB HBM3, 9.0\nNVIDIA A100-SXM4-40GB, 8.0\n", HEADER);
  assert.deepEqual(info, {
    gpus: [
      { name: "NVIDIA H100 80GB HBM3", computeCap: "9.0" },
      { name: "NVIDIA A100-SXM4-40GB", computeCap: "8.0" },
    ],
    driverCuda: "13.0",
  });
  assert.deepEqual(parseNvidiaSmi("", "no header"), { gpus: [] });
});

test("node-llama-cpp 3.21.1's prebuilt CUDA library: an H100 or A100 on a CUDA 13.0 driver is refused with the reason", () => {
  const card = (computeCap: string, driverCuda = "13.0"): NvidiaInfo => ({ gpus: [{ name: `card ${computeCap}`, computeCap }], driverCuda });
  const h100 = prebuiltCudaVerdict("3.21.1", "prebuilt", card("9.0"));
  assert.ok(!h100.ok);
  assert.match(h100.reason, /sm_86\/sm_89\/sm_120\/sm_121 only/);
  assert.match(h100.reason, /card 9\.0 \(sm_90\) with a CUDA 13\.0 driver cannot run it/);
  assert.ok(!prebuiltCudaVerdict("3.21.1", "prebuilt", card("8.0")).ok);
  assert.ok(prebuiltCudaVerdict("3.21.1", "prebuilt", card("8.9")).ok, "machine code for an RTX 4090");
  assert.ok(prebuiltCudaVerdict("3.21.1", "prebuilt", card("9.0", "13.1")).ok, "a CUDA 13.1 driver compiles the PTX for newer cards");
  assert.ok(!prebuiltCudaVerdict("3.21.1", "prebuilt", card("8.0", "13.1")).ok, "PTX does not run on cards older than it");
  assert.ok(prebuiltCudaVerdict("3.21.1", "localBuild", card("9.0")).ok, "a local build is made for the card");
  assert.ok(prebuiltCudaVerdict("9.9.9", "prebuilt", card("9.0")).ok, "an unknown version is not judged");
  const shipped = PREBUILT_CUDA_CODE["3.21.1"]!.sha256;
  assert.ok(!prebuiltCudaVerdict("3.21.1", "prebuilt", card("9.0"), shipped).ok, "the shipped library is judged");
  assert.ok(prebuiltCudaVerdict("3.21.1", "prebuilt", card("9.0"), "0".repeat(64)).ok, "a library replaced by a build for the card is not");
  const mixed = prebuiltCudaVerdict("3.21.1", "prebuilt", { gpus: [{ name: "a", computeCap: "8.9" }, { name: "b", computeCap: "9.0" }] });
  assert.ok(!mixed.ok && /b \(sm_90\)/.test(mixed.reason) && !/a \(sm_89\)/.test(mixed.reason));
});

test("the installed CUDA prebuilt is the one whose code was read (its sha256), so the verdict applies to it", { skip: process.platform !== "linux" || process.arch !== "x64" }, async () => {
  assert.equal(await prebuiltCudaLibraryDigest(), PREBUILT_CUDA_CODE["3.21.1"]!.sha256);
});

test("an NVIDIA card that no GPU build here can use is said plainly, with how to get a build, and models run on the CPU", async () => {
  const engine = new LlamaCppEngine({ gpu: "auto", queryNvidia: async () => ({ gpus: [{ name: "NVIDIA H100 80GB HBM3", computeCap: "9.0" }], driverCuda: "13.0" }) });
  try {
    const gpu = await engine.gpu();
    assert.equal(gpu.backend, false);
    assert.equal(engine.gpuNotes.length, 1);
    assert.match(engine.gpuNotes[0] ?? "", /NVIDIA H100 80GB HBM3 found, but no GPU build of node-llama-cpp runs here: models run on the CPU/);
    assert.match(engine.gpuNotes[0] ?? "", /node-llama-cpp source download --gpu cuda/);
  } finally {
    await engine.close();
  }
  const off = new LlamaCppEngine({ gpu: "off", queryNvidia: async () => ({ gpus: [{ name: "x", computeCap: "9.0" }] }) });
  try {
    assert.equal((await off.gpu()).backend, false);
    assert.deepEqual(off.gpuNotes, [], "AI_SERVER_GPU=off asks for the CPU: nothing to report");
  } finally {
    await off.close();
  }
});
