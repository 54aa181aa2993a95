import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { parseByteSize } from "../domain/byte-size.js";
import { parseDuration } from "../domain/duration.js";

/**
 * Every setting, in one place: environment variable, type, default and meaning. `loadConfig` reads them once at
 * start-up, from the environment and the optional config file (src/config/config-file.ts); nothing else reads
 * process.env. `secret: true` marks a value that is never shown (`ai-server config` masks it).
 */
export const settings = {
  host: {
    env: "AI_SERVER_HOST",
    description: "Address to listen on: host, host:port or http://host:port.",
    schema: z.string().default("127.0.0.1:11434"),
  },
  home: {
    env: "AI_SERVER_HOME",
    description: "Directory holding all data (models, database). Nothing is written outside it.",
    schema: z.string().default(defaultHome()),
  },
  threads: {
    env: "AI_SERVER_THREADS",
    description: "CPU threads per loaded model. Default: every core up to 4 (measured fastest on 2 cores), else half the cores.",
    schema: z.coerce.number().int().min(1).max(1024).default(defaultThreads()),
  },
  gpu: {
    env: "AI_SERVER_GPU",
    description: 'GPU backend: "auto", "cuda", "vulkan", "metal" or "off".',
    schema: z.enum(["auto", "cuda", "vulkan", "metal", "off"]).default("auto"),
  },
  engine: {
    env: "AI_SERVER_ENGINE",
    description:
      'Inference engine: "auto" (llama-server when its build runs here and can use the GPU the in-process engine would use, else llama-cpp), "llama-cpp" (in-process, node-llama-cpp) or "llama-server" (one llama.cpp llama-server process per loaded model; falls back to llama-cpp when the binary is missing or does not run).',
    schema: z.enum(["auto", "llama-cpp", "llama-server"]).default("auto"),
  },
  llamaServer: {
    env: "AI_SERVER_LLAMA_SERVER",
    description: "Path of the llama-server binary for AI_SERVER_ENGINE=llama-server; default: the build of scripts/build-llama-server.mjs in its cache.",
    schema: z.string().default(""),
  },
  contextLength: {
    env: "AI_SERVER_CONTEXT_LENGTH",
    description: "Default context window in tokens when a request sets no num_ctx (capped at the model's own).",
    schema: z.coerce.number().int().min(64).max(1 << 20).default(4096),
  },
  keepAliveMs: {
    env: "AI_SERVER_KEEP_ALIVE",
    description: 'How long an idle model stays loaded: a duration ("5m", "1h30m"), seconds, or negative for ever.',
    schema: z.string().default("5m").transform((value, ctx) => {
      try {
        return parseDuration(value);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: error instanceof Error ? error.message : String(error) });
        return z.NEVER;
      }
    }),
  },
  numParallel: {
    env: "AI_SERVER_NUM_PARALLEL",
    description:
      'Requests one loaded model serves at once (slots: sequences decoded together in one batch). "auto": the most of 4, 2 or 1 that fit in the memory the other loaded models leave free when the model loads.',
    schema: z.union([z.literal("auto"), z.coerce.number().int().min(1).max(256)]).default("auto"),
  },
  maxQueue: {
    env: "AI_SERVER_MAX_QUEUE",
    description: "Requests that may wait for a busy model before new ones get 503.",
    schema: z.coerce.number().int().min(0).max(1_000_000).default(512),
  },
  maxLoadedModels: {
    env: "AI_SERVER_MAX_LOADED_MODELS",
    description: "Most models loaded at once; 0 = no cap (the memory budget alone decides). Idle ones are unloaded, least recently used first.",
    schema: z.coerce.number().int().min(0).max(10_000).default(3),
  },
  memoryBudgetBytes: {
    env: "AI_SERVER_MEMORY_BUDGET",
    description: 'RAM the loaded models may take ("24GiB", "8GB", bytes); default: total RAM. The headroom is kept free of it.',
    schema: optionalByteSize(),
  },
  vramBudgetBytes: {
    env: "AI_SERVER_VRAM_BUDGET",
    description: 'VRAM the loaded models may take ("20GiB", bytes); default: total VRAM. The headroom is kept free of it.',
    schema: optionalByteSize(),
  },
  memoryHeadroomBytes: {
    env: "AI_SERVER_MEMORY_HEADROOM",
    description: "Memory kept free below each budget (RAM and VRAM), for the estimates' errors and everything else.",
    schema: byteSize("1GiB"),
  },
  loadCooldownMs: {
    env: "AI_SERVER_LOAD_COOLDOWN",
    description: "After a model fails to load, requests for it fail at once with the same reason for this long (0 = retry every time).",
    schema: duration("30s"),
  },
  requestTimeoutMs: {
    env: "AI_SERVER_REQUEST_TIMEOUT",
    description: "Longest a request may wait (for a load, memory or a slot) and run before it ends with a timeout error; 0 = no limit.",
    schema: duration("10m"),
  },
  upstreamMaxParallel: {
    env: "AI_SERVER_UPSTREAM_MAX_PARALLEL",
    description:
      "Requests an upstream model (one served by remote OpenAI-compatible endpoints, `upstream` on /api/create) sends at once, unless its max_parallel says otherwise; the remote engine batches them.",
    schema: z.coerce.number().int().min(1).max(4096).default(32),
  },
  upstreamConnectTimeoutMs: {
    env: "AI_SERVER_UPSTREAM_CONNECT_TIMEOUT",
    description: "Longest wait for a connection to an upstream endpoint (unless the model's connect_timeout says otherwise); past it the request goes to another endpoint.",
    schema: duration("5s"),
  },
  upstreamFirstByteTimeoutMs: {
    env: "AI_SERVER_UPSTREAM_FIRST_BYTE_TIMEOUT",
    description:
      "Longest wait for an upstream endpoint's answer to begin (its prompt read), and between two pieces of a streamed answer (unless the model's first_byte_timeout says otherwise); a request that got nothing yet then goes to another endpoint.",
    schema: duration("2m"),
  },
  upstreamCooldownMs: {
    env: "AI_SERVER_UPSTREAM_COOLDOWN",
    description:
      "How long an upstream endpoint that failed (refused, reset, timed out, 5xx, 429) gets no traffic while another is left; doubled on each failure in a row (up to 5 minutes), reset by a success.",
    schema: duration("30s"),
  },
  upstreamHealthIntervalMs: {
    env: "AI_SERVER_UPSTREAM_HEALTH_INTERVAL",
    description: "How often each endpoint of a loaded upstream model is checked (GET {url}/models); a failed check starts its cooldown. 0 = only when the model loads.",
    schema: duration("10s"),
  },
  preload: {
    env: "AI_SERVER_PRELOAD",
    description: "Models to load at start-up, comma separated; they stay loaded until evicted for memory. GET /health says when they are ready.",
    schema: z.string().default("").transform((value) => value.split(",").map((s) => s.trim()).filter(Boolean)),
  },
  aliases: {
    env: "AI_SERVER_ALIASES",
    description: 'Extra model names, "alias=model" comma separated; an alias follows its model (re-created or re-pulled) and shares its loaded instance.',
    schema: z.string().default("").transform((value, ctx) => {
      const aliases: Record<string, string> = {};
      for (const pair of value.split(",").map((s) => s.trim()).filter(Boolean)) {
        const [alias, target, ...rest] = pair.split("=").map((s) => s.trim());
        if (!alias || !target || rest.length > 0) ctx.addIssue({ code: "custom", message: `"${pair}" is not alias=model` });
        else aliases[alias] = target;
      }
      return aliases;
    }),
  },
  maxDownloads: {
    env: "AI_SERVER_MAX_DOWNLOADS",
    description: "Pull jobs that download at once; more wait their turn (they resolve what to download right away).",
    schema: z.coerce.number().int().min(1).max(64).default(3),
  },
  pullConnections: {
    env: "AI_SERVER_PULL_CONNECTIONS",
    description: "Parallel ranged connections per file a pull downloads.",
    schema: z.coerce.number().int().min(1).max(64).default(8),
  },
  pullPartSize: {
    env: "AI_SERVER_PULL_PART_SIZE",
    description: 'Size of the ranged parts a file is downloaded in ("64MiB", bytes); each part is retried on its own and resumed where it stopped.',
    schema: byteSize("64MiB"),
  },
  pullStallTimeoutMs: {
    env: "AI_SERVER_PULL_STALL_TIMEOUT",
    description: "A download connection that receives no byte for this long is dropped and its part retried.",
    schema: duration("30s"),
  },
  ollamaRegistry: {
    env: "AI_SERVER_OLLAMA_REGISTRY",
    description: "Base URL of the Ollama registry that names without a slash (llama3.2:1b) and ollama.com/... are pulled from.",
    schema: httpUrl("https://registry.ollama.ai"),
  },
  hfEndpoint: {
    env: "HF_ENDPOINT",
    description: "Base URL of the Hugging Face Hub (or a mirror), as huggingface_hub reads it.",
    schema: httpUrl("https://huggingface.co"),
  },
  hfToken: {
    env: "HF_TOKEN",
    secret: true,
    description: "Hugging Face access token for gated and private repositories; default: the token file huggingface_hub writes (HF_TOKEN_PATH).",
    schema: z.string().default(""),
  },
  hfHome: {
    env: "HF_HOME",
    description: "huggingface_hub's home: its token file and, unless HF_HUB_CACHE says otherwise, its download cache (hub/).",
    schema: z.string().default(path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "huggingface")),
  },
  hfHubCache: {
    env: "HF_HUB_CACHE",
    description: "The local Hugging Face cache whose verified files a pull imports instead of downloading; default: $HF_HOME/hub.",
    schema: z.string().default(""),
  },
  hfTokenPath: {
    env: "HF_TOKEN_PATH",
    description: "File holding the Hugging Face token (huggingface-cli login writes it); default: $HF_HOME/token.",
    schema: z.string().default(""),
  },
  llamaQuantize: {
    env: "AI_SERVER_LLAMA_QUANTIZE",
    description: "Path of llama.cpp's llama-quantize binary for local quantization; default: the one scripts/build-llama-server.mjs builds beside llama-server.",
    schema: z.string().default(""),
  },
  responsesRetentionMs: {
    env: "AI_SERVER_RESPONSES_RETENTION",
    description:
      "How long /v1/responses keeps stored responses (for previous_response_id, item_reference and GET/DELETE /v1/responses/{id}): a duration (\"720h\" is 30 days, as OpenAI keeps them) or seconds; 0 = store nothing.",
    schema: duration("720h"),
  },
  auditRetentionMs: {
    env: "AI_SERVER_AUDIT_RETENTION",
    description:
      'How long the audit log (GET /api/audit) keeps its rows: a duration ("2160h" is 90 days) or seconds; older rows are removed at start and hourly. 0 = no audit log.',
    schema: duration("2160h"),
  },
  auditContent: {
    env: "AI_SERVER_AUDIT_CONTENT",
    description: "1 = the audit log also keeps each request's body and the generated text (each cut at 65,536 characters). Off: no prompt or output text is ever written.",
    schema: flag(),
  },
  bodyLimitBytes: {
    env: "AI_SERVER_BODY_LIMIT",
    description: "Largest JSON request body in bytes (blob uploads are streamed and not limited by this).",
    schema: z.coerce.number().int().min(1024).default(32 * 1024 * 1024),
  },
  bodyTimeoutMs: {
    env: "AI_SERVER_BODY_TIMEOUT",
    description:
      "Longest pause between two bytes of a request body (JSON or a blob upload) before the request ends with 408 and its connection is closed; 0 = wait forever. The time between bytes, not the whole upload: a large upload that keeps moving is never cut.",
    schema: duration("60s"),
  },
  uiDir: {
    env: "AI_SERVER_UI_DIR",
    description: 'Directory of the built web dashboard served at /ui (default: the dist/ui that `npm run build` writes); "off" serves no dashboard.',
    schema: z.string().default(""),
  },
  origins: {
    env: "AI_SERVER_ORIGINS",
    description: "Extra CORS origins, comma separated (wildcards allowed); localhost origins are always allowed.",
    schema: z.string().default("").transform((value) => value.split(",").map((s) => s.trim()).filter(Boolean)),
  },
  auth: {
    env: "AI_SERVER_AUTH",
    description:
      'API keys: "auto" (required as soon as one key is in force, and always on a non-loopback address unless AI_SERVER_ALLOW_OPEN=1; with no key on loopback the server is open) or "on" (always required).',
    schema: z.enum(["auto", "on"]).default("auto"),
  },
  adminKey: {
    env: "AI_SERVER_ADMIN_KEY",
    secret: true,
    description:
      "An admin API key (at least 32 characters) ensured at start-up, stored hashed like any other, for unattended deployments; the CLI also sends it to a running server. A secret: never logged.",
    schema: z.string().default("").refine((value) => value === "" || value.trim().length >= 32, { message: "an admin key needs at least 32 characters (e.g. openssl rand -base64 32)" }),
  },
  apiKey: {
    env: "AI_SERVER_API_KEY",
    secret: true,
    description: "The API key the CLI sends to a running server that requires one (default: AI_SERVER_ADMIN_KEY). A secret.",
    schema: z.string().default(""),
  },
  allowOpen: {
    env: "AI_SERVER_ALLOW_OPEN",
    description: "1 = serve without API keys on a non-loopback address (otherwise the server refuses to start there without a key).",
    schema: flag(),
  },
  metricsOpen: {
    env: "AI_SERVER_METRICS_OPEN",
    description: "1 = GET /metrics needs no API key even when keys are required.",
    schema: flag(),
  },
  openRpm: {
    env: "AI_SERVER_OPEN_RPM",
    description: "When the server runs open (no API keys): requests per minute each client address may make; 0 = unlimited. Keys carry their own limits.",
    schema: z.coerce.number().int().min(0).default(0),
  },
  openTpm: {
    env: "AI_SERVER_OPEN_TPM",
    description: "When the server runs open: tokens (prompt + generated) per minute each client address may spend; 0 = unlimited.",
    schema: z.coerce.number().int().min(0).default(0),
  },
  openMaxParallel: {
    env: "AI_SERVER_OPEN_MAX_PARALLEL",
    description: "When the server runs open: requests each client address may have running at once; 0 = unlimited.",
    schema: z.coerce.number().int().min(0).default(0),
  },
  redisUrl: {
    env: "AI_SERVER_REDIS_URL",
    secret: true,
    description:
      "Redis that counts the rate and concurrency limits (keys' rpm, tpm, max_parallel and the open server's per-address limits), so that every server given the same Redis enforces one limit: redis://[user:password@]host:port[/db], or rediss:// for TLS. Unset: each server process counts alone, in memory. While Redis cannot be reached, requests are admitted uncounted and a warning is logged.",
    schema: z
      .string()
      .default("")
      .refine((value) => value === "" || (/^rediss?:\/\/[^/]/.test(value) && URL.canParse(value)), { message: "expected a redis:// or rediss:// URL" }),
  },
  peers: {
    env: "AI_SERVER_PEERS",
    description:
      "Other replicas of this server (base URLs, comma separated) that a replica lacking a model's weights fetches them from (GET /api/blobs/{digest}, sha256-verified) before trying the model's recorded source. Listing the replica itself is harmless.",
    schema: z
      .string()
      .default("")
      .transform((value) => value.split(",").map((s) => s.trim().replace(/\/+$/, "")).filter(Boolean))
      .refine((urls) => urls.every((url) => /^https?:\/\/[^/]+/.test(url) && URL.canParse(url) && new URL(url).username === "" && new URL(url).password === ""), {
        message: "expected http:// or https:// base URLs, comma separated, without credentials (the key presented to peers is AI_SERVER_PEER_KEY)",
      }),
  },
  peerKey: {
    env: "AI_SERVER_PEER_KEY",
    secret: true,
    description: "The admin API key this replica presents to its peers (AI_SERVER_PEERS) to fetch weights; default: AI_SERVER_ADMIN_KEY (replicas usually share it). A secret.",
    schema: z.string().default(""),
  },
  sessionHeader: {
    env: "AI_SERVER_SESSION_HEADER",
    description:
      'Request header naming the conversation a request belongs to (session affinity): a load balancer can hash on it so that a session stays on one replica, the replica echoes it in the response and steers the request to the slot that served the session last, whose KV cache holds its prefix. Empty: off.',
    schema: z
      .string()
      .default("x-session-id")
      .transform((value) => value.trim().toLowerCase())
      .refine((value) => value === "" || /^[a-z0-9][a-z0-9-]{0,63}$/.test(value), { message: "expected a header name (letters, digits and dashes)" }),
  },
  replicaName: {
    env: "AI_SERVER_REPLICA_NAME",
    description: "This replica's name, sent in the x-ai-server-replica response header so that a response behind a load balancer says which replica served it. Empty: no header.",
    schema: z
      .string()
      .default("")
      .refine((value) => value === "" || /^[\w.:-]{1,64}$/.test(value), { message: "expected up to 64 letters, digits, dots, colons, dashes or underscores" }),
  },
  databaseUrl: {
    env: "AI_SERVER_DATABASE_URL",
    secret: true,
    description:
      "PostgreSQL that holds every server's state but the model bytes (model names and manifests, jobs, quantizations, API keys, the audit log, stored responses), so that every server given the same database shares them at once: postgres://[user[:password]@]host[:port]/database (or postgresql://; TLS and other options as libpq's URL parameters). Unset: the SQLite file ai-server.db in AI_SERVER_HOME, for this server alone.",
    schema: z
      .string()
      .default("")
      .refine((value) => value === "" || (/^postgres(ql)?:\/\//.test(value) && URL.canParse(value)), { message: "expected a postgres:// or postgresql:// URL" }),
  },
  jobLeaseMs: {
    env: "AI_SERVER_JOB_LEASE",
    description:
      "With AI_SERVER_DATABASE_URL: how long a replica's claim on a pull it runs lasts unless renewed (it renews it every third of that); the pulls of a replica that died are taken over by another after it. A server restarted on the same host and home takes its own back at once.",
    schema: duration("30s").refine((ms) => ms >= 1000, { message: "expected at least 1s" }),
  },
  tlsCert: {
    env: "AI_SERVER_TLS_CERT",
    description:
      "PEM file of the certificate (with its chain) to serve HTTPS with, together with AI_SERVER_TLS_KEY; both files are read again on SIGHUP. Unset: plain HTTP.",
    schema: z.string().default(""),
  },
  tlsKey: {
    env: "AI_SERVER_TLS_KEY",
    description: "PEM file of the private key of AI_SERVER_TLS_CERT (its path is shown, its content never).",
    schema: z.string().default(""),
  },
  shutdownTimeoutMs: {
    env: "AI_SERVER_SHUTDOWN_TIMEOUT",
    description:
      "On SIGTERM or SIGINT, how long requests already running may take to finish (new ones get 503) before they are stopped with an error; 0 = stop them at once. A second signal exits at once.",
    schema: duration("30s"),
  },
  logLevel: {
    env: "AI_SERVER_LOG_LEVEL",
    description: 'Log level: "fatal", "error", "warn", "info", "debug", "trace" or "silent".',
    schema: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  },
} as const;

export type SettingName = keyof typeof settings;
export type Config = { readonly [K in SettingName]: z.output<(typeof settings)[K]["schema"]> };

/** A duration setting (Go duration string or seconds) in milliseconds; negative counts as 0 (off). */
function duration(defaultValue: string) {
  return z.union([z.string(), z.number()]).default(defaultValue).transform((value, ctx) => {
    try {
      return Math.max(0, parseDuration(value));
    } catch (error) {
      ctx.addIssue({ code: "custom", message: error instanceof Error ? error.message : String(error) });
      return z.NEVER;
    }
  });
}

/** A switch: "1", "true", "yes", "on" or "0", "false", "no", "off" (any case); unset = off. */
function flag() {
  return z
    .union([z.string(), z.boolean()])
    .default(false)
    .transform((value, ctx) => {
      if (typeof value === "boolean") return value;
      const text = value.trim().toLowerCase();
      if (["1", "true", "yes", "on"].includes(text)) return true;
      if (["0", "false", "no", "off"].includes(text)) return false;
      ctx.addIssue({ code: "custom", message: 'expected "1" or "0"' });
      return z.NEVER;
    });
}

/** An http(s) base URL, without a trailing slash. */
function httpUrl(defaultValue: string) {
  return z
    .string()
    .default(defaultValue)
    .refine((value) => /^https?:\/\/[^/]+/.test(value) && URL.canParse(value), { message: "expected an http:// or https:// URL" })
    .transform((value) => value.replace(/\/+$/, ""));
}

/** A size setting in bytes ("512MiB", "8GB", or bytes). */
function byteSize(defaultValue: string) {
  return z.union([z.string(), z.number()]).default(defaultValue).transform(toBytes);
}

/** Like byteSize, but unset stays undefined (the measured value is used). */
function optionalByteSize() {
  return z.union([z.string(), z.number()]).optional().transform((value, ctx) => (value === undefined ? undefined : toBytes(value, ctx)));
}

function toBytes(value: string | number, ctx: z.RefinementCtx): number {
  try {
    return parseByteSize(value);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: error instanceof Error ? error.message : String(error) });
    return z.NEVER;
  }
}

function defaultHome(): string {
  if (process.platform === "darwin") return path.join(os.homedir(), "Library", "Application Support", "ai-server");
  if (process.platform === "win32") return path.join(process.env.LOCALAPPDATA ?? os.homedir(), "ai-server");
  return path.join(process.env.XDG_DATA_HOME ?? path.join(os.homedir(), ".local", "share"), "ai-server");
}

function defaultThreads(): number {
  const cores = os.availableParallelism();
  // Measured on 2 cores (134M Q8_0, npm run bench): 2 threads decode ~1.8x and read prompts ~1.9x faster than 1.
  // More threads than cores (node-llama-cpp's own default of at least 4) collapses to < 1 tok/s.
  return cores <= 4 ? cores : Math.ceil(cores / 2);
}
