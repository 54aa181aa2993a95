import { createHash, randomBytes, randomInt, timingSafeEqual } from "node:crypto";

/**
 * The API key format and its secret's handling. A generated key reads `ais_<id>_<secret>`: `id` is 8 lower-case
 * letters and digits, public (listed, logged, in the audit log), and `secret` is 32 random bytes in base64url.
 *
 * Only a sha256 of the whole key is stored. A fast hash is right here, unlike for passwords: a key carries 256 random
 * bits, so no guessing of the input can succeed however fast each guess is, and a slow hash (bcrypt, scrypt) would
 * only cost milliseconds on every request. A presented key is found by its id, then its hash is compared with the
 * stored one in constant time.
 */

/** Every generated key starts with this, so that leaked keys are recognisable (secret scanners, logs). */
export const KEY_PREFIX = "ais_";

const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const ID_LENGTH = 8;
const FORMATTED = /^ais_([a-z0-9]{8})_[A-Za-z0-9_-]{43,}$/;

/** A new key and its id. */
export function generateKey(): { id: string; key: string } {
  let id = "";
  for (let i = 0; i < ID_LENGTH; i++) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  return { id, key: `${KEY_PREFIX}${id}_${randomBytes(32).toString("base64url")}` };
}

/**
 * The id of a key: the one it carries when it has the generated format, else (a key chosen by the operator, as
 * AI_SERVER_ADMIN_KEY may be) the first 8 hex digits of its sha256, which reveal nothing usable about it.
 */
export function keyIdOf(key: string): string {
  return FORMATTED.exec(key)?.[1] ?? hashKey(key).toString("hex").slice(0, ID_LENGTH);
}

/** The stored form of a key: sha256 of its UTF-8 bytes. */
export function hashKey(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}

/** Whether two key hashes are equal, in time that does not depend on where they differ. */
export function sameHash(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
