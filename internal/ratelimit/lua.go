package ratelimit

import "github.com/redis/go-redis/v9"

// script is the limiter's only Redis code. It runs atomically on the server, reads the
// clock with TIME (so every process shares Redis's clock, never its own), and keeps all
// state in the one hash KEYS[1]:
//
//	tat        the next free slot (theoretical arrival time), µs of Redis time
//	f, fat     the rate factor set by the last penalty and the time of that penalty
//	ep         the current spread epoch (Redis time / epoch length)
//	cmin, cmax the smallest and largest observed delay (µs) reported in this epoch
//	pmin, pmax the same for the previous epoch
//
// Numbers are written with string.format('%.0f'): Lua's default number formatting keeps
// only 14 significant digits, which would round a µs timestamp (16 digits).
//
// ARGV (the same list for every operation):
//
//	1 op          "r" reserve, "p" penalize, "s" read state
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
//
// KEYS[2] (same hash tag) counts use per second for operators, in a ring of ARGV[18]
// seconds: field t<i> is the second (Redis time) slot i holds, i<i> and b<i> the
// interactive and batch grants whose slot falls in it, x<i> the penalties reported in
// it. The counters never change a reply.
//
// Reply: {ok, wait, now, slot, interval, spread, factor in millionths}. For "r", ok=1 is a
// grant (wait = slot - now) and ok=0 a refusal (wait = how long until the caller's lane
// could take the next slot; nothing was reserved). For "p", ok=0 means the penalty was
// ignored because the reservation predates the last one.
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

local function count(field, sec)
  local st = KEYS[2]
  local i = sec % ring
  if tonumber(redis.call('HGET', st, 't' .. i)) ~= sec then
    redis.call('HSET', st, 't' .. i, sec, 'i' .. i, 0, 'b' .. i, 0, 'x' .. i, 0)
  end
  redis.call('HINCRBY', st, field .. i, 1)
  redis.call('PEXPIRE', st, ttl)
end

if tat == nil or tat < now then tat = now end
if tat - now > reset + 4 * iv then
  -- Redis's clock stepped back (e.g. a failover to a server with another clock): start
  -- again past any slot that may have been handed out before the step.
  tat = now + maxAhead
end

if op == 'r' then
  local ahead = tat - now
  local limit = maxAhead
  if lane == 1 then limit = math.floor(iv * batchAhead) end
  if ahead > limit then
    save()
    return {0, ahead - limit, now, tat, iv, spread, math.floor(factor * 1000000)}
  end
  local slot = tat
  tat = slot + iv
  save()
  if lane == 1 then count('b', math.floor(slot / 1000000)) else count('i', math.floor(slot / 1000000)) end
  return {1, ahead, now, slot, iv, spread, math.floor(factor * 1000000)}
elseif op == 'p' then
  count('x', math.floor(now / 1000000))
  if reservedAt > 0 and reservedAt < fat then
    return {0, 0, now, tat, iv, spread, math.floor(factor * 1000000)}
  end
  factor = math.max(floor, factor * decrease)
  f, fat = factor, now
  iv = interval()
  tat = tat + iv
  save()
  return {1, 0, now, tat, iv, spread, math.floor(factor * 1000000)}
end
return {0, 0, now, tat, iv, spread, math.floor(factor * 1000000)}
`)
