import type { TokenCandidate, TokenLogprob } from "../../domain/generation.js";
import { isRecord } from "./client.js";

/**
 * llama-server's probabilities of generated tokens → TokenLogprobs. Both shapes are read: the chat endpoint's
 * `logprobs.content[]` and /completion's `completion_probabilities[]`, each entry `{id, token, bytes, logprob,
 * top_logprobs}` (or `prob`/`top_probs` with post_sampling_probs, converted with the natural log). llama-server's
 * values are the natural log of the softmax of the model's raw logits (before temperature, penalties and logit bias).
 *
 * A token's text is its own piece: the entry of the same id among the candidates when it is there (the entry itself
 * carries the text sent with it, which a held-back stop string or a split character makes differ), rendered from its
 * bytes so that a piece of a character reads as U+FFFD. Only `top` candidates are kept (llama-server is always asked
 * for at least one).
 */
export function toTokenLogprobs(entries: unknown, top: number): TokenLogprob[] {
  if (!Array.isArray(entries)) return [];
  const out: TokenLogprob[] = [];
  for (const entry of entries) {
    const chosen = candidate(entry);
    if (!chosen || !isRecord(entry)) continue;
    const list = entry.top_logprobs ?? entry.top_probs;
    const candidates = (Array.isArray(list) ? list : []).map(candidate).filter((c): c is Candidate => c !== undefined);
    const own = candidates.find((c) => c.id !== undefined && c.id === chosen.id);
    out.push({
      token: own?.token ?? chosen.token,
      logprob: chosen.logprob,
      bytes: own?.bytes ?? chosen.bytes,
      top: candidates.slice(0, Math.max(0, top)).map(({ token, logprob, bytes }) => ({ token, logprob, bytes })),
    });
  }
  return out;
}

interface Candidate extends TokenCandidate {
  id?: number;
}

function candidate(value: unknown): Candidate | undefined {
  if (!isRecord(value)) return undefined;
  const logprob = typeof value.logprob === "number" ? value.logprob : typeof value.prob === "number" ? Math.log(value.prob) : undefined;
  if (logprob === undefined) return undefined;
  const bytes = Array.isArray(value.bytes) ? value.bytes.filter((b): b is number => typeof b === "number") : undefined;
  const token = bytes ? Buffer.from(bytes).toString("utf8") : typeof value.token === "string" ? value.token : "";
  return {
    ...(typeof value.id === "number" && { id: value.id }),
    token,
    logprob,
    bytes: bytes ?? [...Buffer.from(token, "utf8")],
  };
}
