import { InvalidRequestError } from "./errors.js";

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/**
 * Parses a size in bytes: a number of bytes ("1048576") or a number with a unit ("512MiB", "1.5GB", "64 kb").
 * Decimal units (kB, MB, GB, TB) are powers of 1000, binary ones (KiB, MiB, GiB, TiB) powers of 1024.
 */
export function parseByteSize(value: string | number): number {
  if (typeof value === "number") return checked(value, value);
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = UNITS[(match?.[2] ?? "").toLowerCase()];
  if (!match || unit === undefined) throw new InvalidRequestError(`invalid size "${value}": expected bytes or a number with a unit (MB, MiB, GB, GiB, …)`);
  return checked(Number(match[1]) * unit, value);
}

/** "1.50 GiB", "12.3 MiB", "900 B": for messages. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}

function checked(bytes: number, original: string | number): number {
  if (!Number.isFinite(bytes) || bytes < 0) throw new InvalidRequestError(`invalid size "${original}"`);
  return Math.round(bytes);
}
