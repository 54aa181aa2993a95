import path from "node:path";
import { quantizationOf } from "../quantization-names.js";
import type { HubFile } from "./hub-client.js";

/** One model a repository offers: a GGUF file, or every part of a split GGUF. */
export interface GgufCandidate {
  /** The file to name it by: the file, or the first part. */
  file: string;
  /** Every file, in load order (one, or the parts `-00001-of-0000N` …). */
  files: HubFile[];
  /** From the file name, e.g. "Q4_K_M"; undefined when the name says none. */
  quantization?: string;
  /** Bytes of all its files. */
  size: number;
}

const SPLIT = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

/**
 * The models among a repository's files: every `.gguf` except projectors (`mmproj`) and importance matrices
 * (`imatrix`), which are never the model; the parts of a split GGUF become one candidate (only when every part is
 * there).
 */
export function ggufCandidates(files: readonly HubFile[]): GgufCandidate[] {
  const candidates: GgufCandidate[] = [];
  const splits = new Map<string, { count: number; parts: Map<number, HubFile> }>();
  for (const file of files) {
    if (!/\.gguf$/i.test(file.path) || isAuxiliary(file.path)) continue;
    const split = SPLIT.exec(file.path);
    if (!split) {
      candidates.push(candidateOf([file]));
      continue;
    }
    const [, prefix = "", index = "", count = ""] = split;
    const group = splits.get(prefix) ?? { count: Number(count), parts: new Map<number, HubFile>() };
    splits.set(prefix, group);
    if (Number(count) === group.count) group.parts.set(Number(index), file);
  }
  for (const group of splits.values()) {
    const parts = Array.from({ length: group.count }, (_, i) => group.parts.get(i + 1));
    if (parts.every((part): part is HubFile => part !== undefined)) candidates.push(candidateOf(parts));
  }
  return candidates;
}

function candidateOf(files: HubFile[]): GgufCandidate {
  const first = files[0] as HubFile;
  const quantization = quantizationOf(first.path);
  return { file: first.path, files, ...(quantization && { quantization }), size: files.reduce((sum, f) => sum + f.size, 0) };
}

function isAuxiliary(filePath: string): boolean {
  const name = path.posix.basename(filePath).toLowerCase();
  return name.includes("mmproj") || name.includes("imatrix");
}
