import type { Config } from "../config/schema.js";
import { findLlamaQuantize } from "../engine/llama-server/binary.js";
import type { SqlDatabase } from "../store/database.js";
import type { ModelStore } from "../store/model-store.js";
import { dataPaths } from "../store/open-store.js";
import { Quantizer } from "./quantizer.js";

/**
 * The Quantizer of a server home: the quantize tool of AI_SERVER_LLAMA_QUANTIZE or of the llama-server build, the
 * configured threads, a temp directory beside the blobs. Used by the server, and by the CLI when no server runs.
 */
export function quantizerFor(config: Config, store: ModelStore, db: SqlDatabase): Quantizer {
  return new Quantizer({
    binary: () => findLlamaQuantize(config.llamaQuantize, config.llamaServer),
    store,
    db,
    threads: config.threads,
    tempDir: dataPaths(config.home).quantize,
  });
}
