// The Lua scripts that make shared state atomic in Redis. Each runs as one step on the server,
// with the server's clock (TIME), so replicas never compare their own clocks.
//
// Keys (KEYS[n]) are named by keys.ts; every route's keys share a hash tag ({route}) so the
// scripts also work on a Redis Cluster.

/** Server time in ms. */
const NOW = "local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

/**
 * The slots other replicas may use now: all of them, less the local share of every expected
 * replica that is not heartbeating (it may be cut off from Redis and serving on its share).
 */
const CAPACITY = `
local slots = tonumber(ARGV[3])
local expected = tonumber(ARGV[4])
local share = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local alive = redis.call('ZCARD', KEYS[2])
local absent = expected - alive
if absent < 0 then absent = 0 end
local cap = slots - absent * share
`;

/**
 * The requests other replicas hold beyond their local share (`share`), counted from the lease
 * members (`replica|...`): the slots a replica cut off from Redis must not count as its own
 * until those requests can have ended.
 */
const OTHERS_EXCESS = `
local function othersExcess(key, share, me)
  local per = {}
  for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local r = string.match(m, '^(.-)|')
    if r and r ~= me then per[r] = (per[r] or 0) + 1 end
  end
  local e = 0
  for _, n in pairs(per) do if n > share then e = e + n - share end end
  return e
end
`;

/**
 * acquire: KEYS = [leases, replicas, waiting], ARGV = [member, weight, slots, expected, share, ttl_ms, force, replica]
 * Marks the calling replica alive (it is, since it asks), drops expired leases, then adds `weight` lease entries if they fit under the capacity (or
 * always, with force = 1: requests already running that a rejoining replica re-registers).
 * Returns {1, others' excess} when taken, {0, others' excess} when full; a refusal marks the
 * route as waited on for ttl_ms (the waiter's replica retries well within it).
 */
export const ACQUIRE = `${NOW}
${OTHERS_EXCESS}
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), ARGV[8])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
${CAPACITY}
local weight = tonumber(ARGV[2])
if ARGV[7] ~= '1' and redis.call('ZCARD', KEYS[1]) + weight > cap then
  redis.call('SET', KEYS[3], '1', 'PX', tonumber(ARGV[6]))
  return {0, othersExcess(KEYS[1], share, ARGV[8])}
end
local expiry = now + tonumber(ARGV[6])
for i = 1, weight do redis.call('ZADD', KEYS[1], expiry, ARGV[1] .. '#' .. i) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[6]) * 2)
return {1, othersExcess(KEYS[1], share, ARGV[8])}
`;

/**
 * release: KEYS = [leases, waiting], ARGV = [member, weight, channel, route]. Removes the
 * entries and, when some replica has a request waiting for the route, announces the free slots.
 */
export const RELEASE = `
local removed = 0
for i = 1, tonumber(ARGV[2]) do removed = removed + redis.call('ZREM', KEYS[1], ARGV[1] .. '#' .. i) end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return removed
`;

/**
 * heartbeat: KEYS = [replicas, leases], ARGV = [replica, ttl_ms, add, member#i ...]
 * Marks the replica alive for this route and extends its live leases there. With add = 0
 * (ZADD XX) an entry already reaped is not brought back; with add = 1 (a replica rejoining
 * after an outage) every running request's entries are (re)added in the same step.
 */
export const HEARTBEAT = `${NOW}
local ttl = tonumber(ARGV[2])
local expiry = now + ttl
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 4)
local kept = 0
for i = 4, #ARGV do
  if ARGV[3] == '1' then kept = kept + redis.call('ZADD', KEYS[2], 'CH', expiry, ARGV[i])
  else kept = kept + redis.call('ZADD', KEYS[2], 'XX', 'CH', expiry, ARGV[i]) end
end
if #ARGV > 3 then redis.call('PEXPIRE', KEYS[2], ttl * 2) end
return kept
`;

/** count: KEYS = [leases], ARGV = [share, replica] → {live lease entries (lab-wide in-flight), others' excess}. */
export const COUNT = `${NOW}
${OTHERS_EXCESS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return {redis.call('ZCARD', KEYS[1]), othersExcess(KEYS[1], tonumber(ARGV[1]), ARGV[2])}
`;

/** Lock renewal: KEYS = [lock], ARGV = [owner, ttl_ms] → 1 when still ours (and extended). */
export const RENEW_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/**
 * Lock take: KEYS = [lock], ARGV = [owner, ttl_ms] → {1} when taken or already held under this
 * owner's name (its expiry extended to at least ttl_ms), else {0, holder}. The owner is a
 * replica id: this host's `serve` and its `watchdog --once` act under the same one.
 */
export const HOLD_LOCK = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1} end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
  return {1}
end
return {0, holder or ''}
`;

/** Lock release: KEYS = [lock], ARGV = [owner]. */
export const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * key admit: KEYS = [rpm window, in-flight leases], ARGV = [member, rpm (-1: none),
 * max_in_flight (-1: none), ttl_ms]. → {1} admitted, or {0, 'rpm' | 'in_flight', retry_after_s}.
 */
export const KEY_ADMIT = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local maxIn = tonumber(ARGV[3])
if maxIn >= 0 and redis.call('ZCARD', KEYS[2]) >= maxIn then return {0, 'in_flight', 1} end
local rpm = tonumber(ARGV[2])
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
  if redis.call('ZCARD', KEYS[1]) >= rpm then
    local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2] or now)
    local wait = math.ceil((oldest + 60000 - now) / 1000)
    if wait < 1 then wait = 1 end
    if wait > 60 then wait = 60 end
    return {0, 'rpm', wait}
  end
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], 61000)
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]) * 2)
return {1}
`;

/**
 * key reserve: KEYS = [month hash], ARGV = [need, want, limit, seed_used].
 * → {1, reserved, used} or {0, 0, used}. The month starts from `seed_used` (this replica's
 * persisted usage) the first time any replica counts it.
 */
export const KEY_RESERVE = `
redis.call('HSETNX', KEYS[1], 'used', ARGV[4])
local used = tonumber(redis.call('HGET', KEYS[1], 'used'))
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
local need = tonumber(ARGV[1])
local left = tonumber(ARGV[3]) - used - reserved
if left <= 0 or left < need then return {0, 0, used} end
local r = math.max(tonumber(ARGV[2]), need, 1)
if r > left then r = left end
redis.call('HINCRBY', KEYS[1], 'reserved', math.floor(r))
redis.call('PEXPIRE', KEYS[1], 40 * 86400000)
return {1, r, used}
`;

/** key settle: KEYS = [month hash], ARGV = [reserved, used, requests]. → used after. */
export const KEY_SETTLE = `
local reserved = tonumber(redis.call('HINCRBY', KEYS[1], 'reserved', 0 - math.floor(tonumber(ARGV[1]))))
if reserved < 0 then redis.call('HSET', KEYS[1], 'reserved', 0) end
redis.call('HINCRBY', KEYS[1], 'requests', math.floor(tonumber(ARGV[3])))
local used = redis.call('HINCRBY', KEYS[1], 'used', math.floor(tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], 40 * 86400000)
return used
`;
