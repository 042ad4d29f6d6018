"""The Redis scripts behind ``RedisState``. Each runs atomically on the server, so no read-then-write race.

Windows are aligned on the Redis server's clock (``TIME``), so replicas on machines with skewed
clocks still agree on the window. Keys are ``<prefix>:<model_id>:<what>``.
"""

from __future__ import annotations

__all__ = ["ADMIT", "FAIL", "SYNC"]

# (release of a max_parallel_requests slot: a pipelined HINCRBY <base>:par <instance> -n, see shared.py)

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Values read back from keys are checked: Lua's tonumber accepts 'nan' and 'inf', and a non-finite latency
# or counter (written by anyone with access to Redis) must neither spread nor break the script; a counter
# that is not an integer would make INCR fail on every call, so it is dropped.
_NUMBERS = """
local function finite(v)
  local n = tonumber(v)
  if n == nil or n ~= n or n == math.huge or n == -math.huge then
    return nil
  end
  return n
end
local function counter(key)
  local v = redis.call('GET', key)
  if v and not string.match(v, '^%-?%d+$') then
    redis.call('DEL', key)
    return 0
  end
  return tonumber(v or '0')
end
"""

# Admits a batch of requests in arrival order (several requests, possibly for the same deployment).
# ARGV: window ms, this instance's id, instance liveness key prefix (<prefix>:alive:),
#   then per request: base key, rpm (0 = none), tpm (0 = none), max parallel requests (0 = none)
# -> {ms until the window ends, then per request: 1 admitted, 0 rpm/tpm window full, 2 at max parallel}
# In-flight calls of a deployment with max_parallel_requests are counted in the hash <base>:par, one field
# per instance (incremented here, decremented by RedisState's release); fields of instances whose liveness
# key (set by SYNC) expired, and fields that are not integers, are dropped.
ADMIT = (
    _NOW
    + _NUMBERS
    + """
local window, me, alive = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local win = math.floor(now / window)
local out = {(win + 1) * window - now}
local function busy(key)
  local total = 0
  local seen = redis.call('HGETALL', key)
  for j = 1, #seen, 2 do
    local who, count = seen[j], seen[j + 1]
    if not string.match(count, '^%-?%d+$') or (who ~= me and redis.call('EXISTS', alive .. who) == 0) then
      redis.call('HDEL', key, who)
    elseif tonumber(count) > 0 then
      total = total + tonumber(count)
    end
  end
  return total
end
for i = 4, #ARGV, 4 do
  local base, rpm, tpm, par = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local admitted = 1
  local key = base .. ':rpm:' .. win
  local used = counter(key)
  if tpm > 0 and counter(base .. ':tpm:' .. win) >= tpm then
    admitted = 0
  elseif rpm > 0 and used >= rpm then
    admitted = 0
  elseif par > 0 and busy(base .. ':par') >= par then
    admitted = 2
  else
    redis.call('INCR', key)
    if used == 0 then
      redis.call('PEXPIRE', key, window * 2)
    end
    if par > 0 then
      redis.call('HINCRBY', base .. ':par', me, 1)
      redis.call('PEXPIRE', base .. ':par', 3600000)
    end
  end
  out[#out + 1] = admitted
end
return out
"""
)

# ARGV: base key, allowed_fails, cooldown ms, may cool down 0/1, fail window ms -> cooldown ms left (0 = none)
FAIL = """
local base, allowed, cool, may = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
local left = redis.call('PTTL', base .. ':cooldown')
if left > 0 then
  return left
end
local key = base .. ':fails'
local fails = redis.call('INCR', key)
if fails == 1 then
  redis.call('PEXPIRE', key, tonumber(ARGV[5]))
end
if may and cool > 0 and fails > allowed then
  redis.call('SET', base .. ':cooldown', '1', 'PX', cool)
  redis.call('DEL', key)
  return cool
end
return 0
"""

# Publishes this instance's in-flight counts, token usage and latency samples; returns the shared view.
# Also marks the instance alive (<prefix>:alive:<instance>, for ADMIT's max-parallel counts) for stale ms.
# ARGV: prefix, instance id, stale ms, window ms, samples kept, then per deployment:
#   model id, in-flight here, tokens since last sync, latency sum ms, latency samples,
#   new whole-completion latencies ms as comma-separated text ('' = none)
# -> {ms until the window ends, then per deployment: in-flight elsewhere, tokens in window,
#     requests in window, latency ms as text ('' = unknown), cooldown ms left (<= 0 = none),
#     the most recent latencies ms as comma-separated text (all instances; for hedge_delay "auto")}
SYNC = (
    _NOW
    + _NUMBERS
    + """
local prefix, me, stale, window = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local keep = tonumber(ARGV[5])
redis.call('SET', prefix .. ':alive:' .. me, '1', 'PX', stale)
local win = math.floor(now / window)
local out = {(win + 1) * window - now}
for i = 6, #ARGV, 6 do
  local base = prefix .. ':' .. ARGV[i]
  local busy = base .. ':inflight'
  redis.call('HSET', busy, me, ARGV[i + 1] .. ':' .. now)
  redis.call('PEXPIRE', busy, stale * 20)
  local elsewhere = 0
  local seen = redis.call('HGETALL', busy)
  for j = 1, #seen, 2 do
    if seen[j] ~= me then
      local count, at = string.match(seen[j + 1], '^(%-?%d+):(%d+)$')
      if count == nil or now - tonumber(at) > stale then
        redis.call('HDEL', busy, seen[j])
      else
        elsewhere = elsewhere + tonumber(count)
      end
    end
  end
  local tkey = base .. ':tpm:' .. win
  local tokens
  local delta = tonumber(ARGV[i + 2])
  tokens = counter(tkey)
  if delta > 0 then
    tokens = redis.call('INCRBY', tkey, delta)
    redis.call('PEXPIRE', tkey, window * 2)
  end
  local requests = counter(base .. ':rpm:' .. win)
  local lkey = base .. ':latency'
  local latency = finite(redis.call('GET', lkey))
  if latency ~= nil and latency < 0 then
    latency = nil
  end
  local samples = tonumber(ARGV[i + 4])
  if samples > 0 then
    local mean = tonumber(ARGV[i + 3]) / samples
    if latency then
      latency = latency + (mean - latency) * (1 - 0.8 ^ samples)
    else
      latency = mean  -- a missing or broken shared value is replaced by this instance's
    end
    redis.call('SET', lkey, tostring(latency), 'PX', 3600000)
  end
  out[#out + 1] = elsewhere
  out[#out + 1] = tokens
  out[#out + 1] = requests
  out[#out + 1] = latency and tostring(latency) or ''
  out[#out + 1] = redis.call('PTTL', base .. ':cooldown')
  local skey = base .. ':samples'
  if ARGV[i + 5] ~= '' then
    for sample in string.gmatch(ARGV[i + 5], '[^,]+') do
      redis.call('RPUSH', skey, sample)
    end
    redis.call('LTRIM', skey, -keep, -1)
    redis.call('PEXPIRE', skey, 3600000)
  end
  out[#out + 1] = table.concat(redis.call('LRANGE', skey, 0, -1), ',')
end
return out
"""
)
