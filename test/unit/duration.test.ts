import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDuration } from "../../src/domain/duration.js";
import { InvalidRequestError } from "../../src/domain/errors.js";

test("parseDuration reads Ollama keep_alive values into milliseconds", () => {
  const cases: Array<[string | number, number]> = [
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["300ms", 300],
    ["1.5s", 1500],
    ["24h", 86_400_000],
    ["2000us", 2],
    [10, 10_000], // numbers are seconds
    ["10", 10_000],
    [0.5, 500],
    [0, 0],
    ["0", 0],
    ["0s", 0],
    [-1, -1], // negative: for ever
    ["-1", -1],
    ["-1m", -1],
    [-300, -1],
    [" 5m ", 300_000],
  ];
  for (const [input, expected] of cases) assert.equal(parseDuration(input), expected, `parseDuration(${JSON.stringify(input)})`);
});

test("parseDuration rejects what is not a duration", () => {
  for (const input of ["", "abc", "5 minutes", "m5", "1d", "5m-", "--1", Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => parseDuration(input), InvalidRequestError, `parseDuration(${JSON.stringify(input)})`);
  }
});
