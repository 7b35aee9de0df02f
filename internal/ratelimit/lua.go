package ratelimit

import "github.com/redis/go-redis/v9"

// script is the limiter's only Redis code. It runs atomically on the server, reads the
// clock with TIME (so every process shares Redis's clock, never its own), and keeps the
// pacing state in the hash KEYS[1]:
//
//	tat        the next free slot (theoretical arrival time), µs of Redis time
//	f, fat     the rate factor set by the last penalty and the time of that penalty
//	ep         the current spread epoch (Redis time / epoch length)
//	cmin, cmax the smallest and largest observed delay (µs) reported in this epoch
//	pmin, pmax the same for the previous epoch
//
// and the provisional batch slots in the sorted set KEYS[3]: member the holder's token,
// score its slot. Every slot, whoever holds it, was handed out from tat, so slots stay
// one interval apart whatever preemption does: preemption only changes holders.
//
// Numbers are written with string.format('%.0f'): Lua's default number formatting keeps
// only 14 significant digits, which would round a µs timestamp (16 digits).
//
// ARGV (the same list for every operation):
//
//	1 op          "r" reserve, "c" claim a provisional slot, "p" penalize, "s" read state
//	2 lane        0 interactive, 1 batch
//	3 rate        configured grants per second
//	4 maxAhead    how far ahead an interactive reservation may reach, µs
//	5 omin        the caller's smallest observed delay, µs (-1: none yet)
//	6 omax        the caller's largest observed delay, µs (-1: none yet)
//	7 spread0     spread used while nobody has reported observations, µs
//	8 spreadMin   floor of the spread, µs
//	9 spreadMax   cap of the spread, µs
//	10 recovery   factor regained per second since the last penalty
//	11 decrease   factor multiplier of a penalty
//	12 floor      smallest factor
//	13 reservedAt Redis time (µs) at which the penalized reservation was made (0: unknown)
//	14 ttl        key expiry, ms
//	15 epoch      length of a spread epoch, µs
//	16 reset      a tat further than this (plus four intervals) ahead of now is a step
//	              back of Redis's clock, µs
//	17 batchAhead how far ahead a batch reservation may reach, in intervals (0 to 1)
//	18 ring       seconds kept in the usage counters of KEYS[2]
//	19 token      "r" batch, "c": the holder's token of a provisional slot
//	20 claimAhead "r" batch: a slot due within this many µs is confirmed at once
//	              instead of provisional; "c": a slot due within it is confirmed
//
// KEYS[2] (same hash tag) counts use per second for operators, in a ring of ARGV[18]
// seconds: field t<i> is the second (Redis time) slot i holds, i<i> and b<i> the
// interactive and batch grants whose slot falls in it, x<i> the penalties reported in
// it. The counters never change a reply.
//
// Reply: {ok, wait, now, slot, interval, spread, factor in millionths, kind}.
//
// For "r", ok=1 is a grant (wait = slot - now) and ok=0 a refusal (wait = how long until
// the caller's lane could take the next slot; nothing was reserved). The kind of a grant
// is 1 for a confirmed slot, 0 for a provisional batch slot (kept in KEYS[3] under the
// token until claimed) and 2 for an interactive slot taken from a batch holder. An
// interactive grant takes the earliest provisional batch slot not yet due, if any: its
// holder moves to the next provisional slot, that one's holder to the next, and the last
// to tat, so batch holders keep their order.
//
// For "c", ok=1 confirms the token's slot (removed from KEYS[3]: never preempted any
// more), ok=0 names its slot, maybe moved, which is not due within claimAhead yet, and
// ok=-1 means the token holds nothing (its slot was forgotten after a clock step; the
// caller reserves again).
//
// For "p", ok=0 means the penalty was ignored because the reservation predates the last
// one. For "s", slot is where the lane's next reservation would land.
var script = redis.NewScript(`
if redis.replicate_commands then pcall(redis.replicate_commands) end
local key = KEYS[1]
local op = ARGV[1]
local lane = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local maxAhead = tonumber(ARGV[4])
local omin = tonumber(ARGV[5])
local omax = tonumber(ARGV[6])
local spread0 = tonumber(ARGV[7])
local spreadMin = tonumber(ARGV[8])
local spreadMax = tonumber(ARGV[9])
local recovery = tonumber(ARGV[10])
local decrease = tonumber(ARGV[11])
local floor = tonumber(ARGV[12])
local reservedAt = tonumber(ARGV[13])
local ttl = tonumber(ARGV[14])
local epoch = tonumber(ARGV[15])
local reset = tonumber(ARGV[16])
local batchAhead = tonumber(ARGV[17])
local ring = tonumber(ARGV[18])
local token = ARGV[19]
local claimAhead = tonumber(ARGV[20])
local held = KEYS[3]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local h = redis.call('HMGET', key, 'tat', 'f', 'fat', 'ep', 'cmin', 'cmax', 'pmin', 'pmax')
local tat = tonumber(h[1])
local f = tonumber(h[2]) or 1
local fat = tonumber(h[3]) or 0
local ep = tonumber(h[4])
local cmin, cmax = tonumber(h[5]), tonumber(h[6])
local pmin, pmax = tonumber(h[7]), tonumber(h[8])

-- Observed delay spread, shared by every process: the union of what each reported in
-- this epoch and the previous one.
local e = math.floor(now / epoch)
if e ~= ep then
  if ep ~= nil and e == ep + 1 then pmin, pmax = cmin, cmax else pmin, pmax = nil, nil end
  cmin, cmax, ep = nil, nil, e
end
if omin >= 0 and omax >= omin then
  if cmin == nil or omin < cmin then cmin = omin end
  if cmax == nil or omax > cmax then cmax = omax end
end
local lo, hi = cmin, cmax
if pmin ~= nil and (lo == nil or pmin < lo) then lo = pmin end
if pmax ~= nil and (hi == nil or pmax > hi) then hi = pmax end
local spread = spread0
if lo ~= nil and hi ~= nil then spread = hi - lo end
if spread < spreadMin then spread = spreadMin end
if spread > spreadMax then spread = spreadMax end

-- Adaptive factor: multiplicative decrease on penalty, additive increase with time.
local factor = f
if factor < 1 then factor = math.min(1, f + recovery * (now - fat) / 1000000) end
local function interval() return math.ceil((1000000 + spread) / (rate * factor)) end
local iv = interval()

local function n(x) if x == nil then return '' end return string.format('%.0f', x) end
local function save()
  redis.call('HSET', key, 'tat', n(tat), 'f', string.format('%.6f', f), 'fat', n(fat),
    'ep', n(ep), 'cmin', n(cmin), 'cmax', n(cmax), 'pmin', n(pmin), 'pmax', n(pmax))
  redis.call('PEXPIRE', key, ttl)
end

local function count(field, at, d)
  local st = KEYS[2]
  local s = math.floor(at / 1000000)
  local i = s % ring
  if tonumber(redis.call('HGET', st, 't' .. i)) ~= s then
    if d < 0 then return end
    redis.call('HSET', st, 't' .. i, s, 'i' .. i, 0, 'b' .. i, 0, 'x' .. i, 0)
  end
  redis.call('HINCRBY', st, field .. i, d)
  redis.call('PEXPIRE', st, ttl)
end

-- The provisional batch slots an interactive reservation may take: due from now on,
-- before tat (every slot handed out is; the bound only guards against a clock step).
local function preemptible(limit)
  if limit then
    return redis.call('ZRANGEBYSCORE', held, n(now), '(' .. n(tat), 'WITHSCORES', 'LIMIT', 0, limit)
  end
  return redis.call('ZRANGEBYSCORE', held, n(now), '(' .. n(tat), 'WITHSCORES')
end
local fx = math.floor(factor * 1000000)

if tat == nil or tat < now then tat = now end
if tat - now > reset + 4 * iv then
  -- Redis's clock stepped back (e.g. a failover to a server with another clock): start
  -- again past any slot that may have been handed out before the step.
  tat = now + maxAhead
  redis.call('DEL', held) -- their holders reserve again
end

if op == 'r' then
  local ahead = tat - now
  local limit = maxAhead
  if lane == 1 then limit = math.floor(iv * batchAhead) end
  if ahead > limit then
    save()
    return {0, ahead - limit, now, tat, iv, spread, fx, 0}
  end
  local slot, kind = tat, 1
  if lane == 0 then
    local h = preemptible()
    if #h > 0 then
      -- Take the earliest provisional batch slot; every holder moves one place back.
      slot, kind = tonumber(h[2]), 2
      for j = 1, #h, 2 do
        local to = tat
        if h[j + 3] then to = tonumber(h[j + 3]) end
        redis.call('ZADD', held, n(to), h[j])
      end
      count('b', slot, -1)
      count('b', tat, 1)
    end
  elseif slot - now > claimAhead then
    kind = 0
    redis.call('ZREMRANGEBYSCORE', held, '-inf', n(now - reset))
    redis.call('ZADD', held, n(slot), token)
    redis.call('PEXPIRE', held, ttl)
  end
  tat = tat + iv
  save()
  if lane == 1 then count('b', slot, 1) else count('i', slot, 1) end
  return {1, slot - now, now, slot, iv, spread, fx, kind}
elseif op == 'c' then
  save()
  local s = tonumber(redis.call('ZSCORE', held, token))
  if s == nil then
    return {-1, 0, now, tat, iv, spread, fx, 0}
  end
  if s - now > claimAhead then
    return {0, s - now, now, s, iv, spread, fx, 0}
  end
  redis.call('ZREM', held, token)
  return {1, s - now, now, s, iv, spread, fx, 1}
elseif op == 'p' then
  count('x', now, 1)
  if reservedAt > 0 and reservedAt < fat then
    return {0, 0, now, tat, iv, spread, fx, 0}
  end
  factor = math.max(floor, factor * decrease)
  f, fat = factor, now
  iv = interval()
  tat = tat + iv
  save()
  return {1, 0, now, tat, iv, spread, math.floor(factor * 1000000), 0}
end
local slot = tat
if lane == 0 then
  local h = preemptible(1)
  if #h > 0 then slot = tonumber(h[2]) end
end
return {0, 0, now, slot, iv, spread, fx, 0}
`)
