// The internet is what cannot exist here: test/helpers/range-server.ts stands in for it on 127.0.0.1. The process
// that is killed is real: a child node process downloading, ended with SIGKILL (no chance to save anything).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Downloader, type DownloaderSettings } from "../../src/pull/download/downloader.js";
import { startRangeServer, writeRandomFile } from "../helpers/range-server.js";

const SETTINGS: DownloaderSettings = { connections: 4, partSize: 256 << 10, stallTimeoutMs: 5000, retryBaseMs: 10 };
const DOWNLOADER_MODULE = fileURLToPath(new URL("../../src/pull/download/downloader.ts", import.meta.url));

/** Downloads in this child process, printing each progress report as a line. */
const CHILD = `
const { Downloader } = await import(process.argv[1]);
const [dir, settings, request] = process.argv.slice(2).map((arg, i) => (i === 0 ? arg : JSON.parse(arg)));
await new Downloader(dir, settings).download(request, { onProgress: ({ completed }) => console.log(completed) });
`;

test("a download whose process is killed (SIGKILL) resumes from its last save in a new process", async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), "ai-server-download-kill-"));
  const file = await writeRandomFile(path.join(root, "served.bin"), 3 << 20);
  const server = await startRangeServer(file, { bytesPerSecond: 128 << 10 }); // 512 KiB/s over 4 connections: 6 s
  const dir = path.join(root, "downloads");
  const request = { url: server.url, size: file.size, sha256: file.sha256 };
  try {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", CHILD, DOWNLOADER_MODULE, dir, JSON.stringify(SETTINGS), JSON.stringify(request)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = once(child, "exit");
    let reported = 0;
    let firstBytesAt: number | undefined;
    for await (const line of createInterface({ input: child.stdout! })) {
      reported = Number(line);
      if (reported > 0) firstBytesAt ??= Date.now();
      // Past the first periodic save (every second), well before the end.
      if (firstBytesAt !== undefined && Date.now() - firstBytesAt > 1500) break;
    }
    child.kill("SIGKILL");
    await exited;
    assert.ok(reported < file.size, `killed mid-download, at ${reported} bytes`);

    server.resetCounts();
    server.switches.bytesPerSecond = undefined;
    const downloader = new Downloader(dir, SETTINGS);
    try {
      const kept = await downloader.partialBytes(request);
      assert.ok(kept > 0 && kept < file.size, `the last save claims ${kept} bytes`);
      const result = await downloader.download(request);
      assert.equal(result.digest, file.sha256);
      assert.ok((await readFile(result.path)).equals(await readFile(file.path)));
      assert.equal(server.bytesServed, file.size - kept, "only what the save did not claim was fetched again");
    } finally {
      await downloader.close();
    }
  } finally {
    await server.close();
    await rm(root, { recursive: true, force: true });
  }
});
