import { createHash } from "node:crypto";

/**
 * The Lua scripts of RedisLimitCounter. Each operation on a principal is one script, which Redis runs atomically: two
 * replicas racing on one principal never both take its last request. The arithmetic is MemoryLimitCounter's, in the
 * same units (a request or token times the window in ms, so levels stay exact integers), and time is Redis's own
 * clock (TIME), so replicas whose clocks disagree still count one budget.
 *
 * Per principal: a hash `…:budget` (fields r and t: the two bucket levels, absent when that limit is not set; at:
 * when they were computed), deleted once both buckets are full again and otherwise expiring a second after they
 * will be; and a sorted set `…:running` of the requests holding a max_parallel slot, each scored by the time its
 * lease ends, expiring a second after the last lease.
 */

/** Extra life of a key past the moment it stops saying anything (a fresh key means the same). */
const KEY_MARGIN_MS = 1000;

/** Helpers every script starts with. Numbers are written with 17 digits, so levels survive the round trip exactly. */
const PRELUDE = `
local function clock()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function untilLevel(level, target, rate)
  if level >= target then return 0 end
  return math.ceil((target - level) / rate)
end
local function refill(key, rpm, tpm, window, now)
  local stored = redis.call('HMGET', key, 'r', 't', 'at')
  local at = tonumber(stored[3]) or now
  local elapsed = math.max(0, now - at)
  local r, t
  if rpm then r = math.min(rpm * window, (tonumber(stored[1]) or rpm * window) + elapsed * rpm) end
  if tpm then t = math.min(tpm * window, (tonumber(stored[2]) or tpm * window) + elapsed * tpm) end
  return r, t, math.max(at, now)
end
local function save(key, r, t, at, rpm, tpm, window)
  local fullIn = 0
  if r then fullIn = math.max(fullIn, untilLevel(r, rpm * window, rpm)) end
  if t then fullIn = math.max(fullIn, untilLevel(t, tpm * window, tpm)) end
  redis.call('DEL', key)
  if fullIn == 0 then return end
  local fields = {'at', string.format('%.17g', at)}
  if r then table.insert(fields, 'r'); table.insert(fields, string.format('%.17g', r)) end
  if t then table.insert(fields, 't'); table.insert(fields, string.format('%.17g', t)) end
  redis.call('HSET', key, unpack(fields))
  redis.call('PEXPIRE', key, fullIn + ${KEY_MARGIN_MS})
end
local function state(level, limit, window)
  if not level then return -1, -1 end
  return math.max(0, math.floor(level / window)), untilLevel(level, limit * window, limit)
end
`;

/**
 * Admits one request or says why not. KEYS: budget, running. ARGV: window ms, rpm, tpm, max_parallel (each "" when
 * unset), holder id, lease ms, the wait told to a request refused for max_parallel. Returns the refused limit ("" when
 * admitted), the wait in ms, then remaining and reset ms of requests and of tokens (-1 when that limit is unset).
 * An admitted request of a principal with max_parallel becomes a member of `running` until its lease ends.
 */
export const TAKE_SCRIPT = `${PRELUDE}
local window, rpm, tpm, maxParallel = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local lease = tonumber(ARGV[6])
local now = clock()
local r, t, at = refill(KEYS[1], rpm, tpm, window, now)
local limit, wait = '', 0
if rpm and r < window then limit = 'rpm'; wait = untilLevel(r, window, rpm) end
if tpm and t < window then
  local tokenWait = untilLevel(t, window, tpm)
  if limit == '' or tokenWait > wait then limit = 'tpm'; wait = tokenWait end
end
if maxParallel then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if limit == '' and redis.call('ZCARD', KEYS[2]) >= maxParallel then limit = 'maxParallel'; wait = tonumber(ARGV[7]) end
end
if limit == '' then
  if rpm then r = r - window end
  if maxParallel then
    redis.call('ZADD', KEYS[2], now + lease, ARGV[5])
    redis.call('PEXPIRE', KEYS[2], lease + ${KEY_MARGIN_MS})
  end
end
save(KEYS[1], r, t, at, rpm, tpm, window)
local requestsLeft, requestsReset = state(r, rpm, window)
local tokensLeft, tokensReset = state(t, tpm, window)
return {limit, wait, requestsLeft, requestsReset, tokensLeft, tokensReset}
`;

/** Spends tokens (the balance may go negative). KEYS: budget. ARGV: window ms, rpm, tpm (tpm set), tokens. */
export const CHARGE_SCRIPT = `${PRELUDE}
local window, rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local r, t, at = refill(KEYS[1], rpm, tpm, window, clock())
t = t - tonumber(ARGV[4]) * window
save(KEYS[1], r, t, at, rpm, tpm, window)
return 1
`;

/**
 * Extends the leases of requests still running. KEYS: running. ARGV: lease ms, then the holder ids. A holder whose
 * lease already ended (this process could not reach Redis for a whole lease) is not brought back.
 */
export const REFRESH_SCRIPT = `${PRELUDE}
local lease = tonumber(ARGV[1])
local expiry = clock() + lease
local extended = 0
for i = 2, #ARGV do extended = extended + redis.call('ZADD', KEYS[1], 'XX', 'CH', expiry, ARGV[i]) end
if extended > 0 then redis.call('PEXPIRE', KEYS[1], lease + ${KEY_MARGIN_MS}) end
return extended
`;

/** A script and its SHA-1, as EVALSHA names it. */
export interface LuaScript {
  source: string;
  sha: string;
}

export function luaScript(source: string): LuaScript {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}
