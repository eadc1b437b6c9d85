package redisstore

import "github.com/redis/go-redis/v9"

// The scripts keep dispatch.Supersedes on the server, so that reading what
// a key holds and replacing it is one atomic step. An event is known there
// by its order fields: s and n (the timestamp's Unix seconds and
// nanoseconds, exact in Lua's doubles for any year), c (2 ends the job, 1
// asks for action, 0 anything else) and w (its webhook-id). x is an
// entry's expiry in Unix milliseconds of the Store's clock, and o the
// nonce of the call that wrote it: go-redis resends a command whose answer
// was lost, and a script that finds its own nonce answers as the first
// run did, rather than taking its own write for a duplicate. The scripts
// use only commands of Redis 6 and touch only keys of one hash tag.
//
// TestOrderingMatchesSupersedes checks that the scripts agree with
// dispatch.Supersedes on every combination that ordering distinguishes.
const luaSupersedes = `
local function supersedes(as, an, ac, aw, bs, bn, bc, bw)
	if ac == 2 and bc == 1 then return true end
	if ac == 1 and bc == 2 then return false end
	if as ~= bs then return as > bs end
	if an ~= bn then return an > bn end
	if bc == 1 and ac ~= 1 then return true end
	return ac == 1 and bc == 1 and aw ~= '' and bw ~= '' and aw ~= bw
end
`

// luaCommon starts the scripts of Save and Consume.
const luaCommon = luaSupersedes + `

-- held returns the order fields and nonce of key's entry, or nil if it
-- has none that is alive at now.
local function held(key, now)
	local h = redis.call('HMGET', key, 'x', 's', 'n', 'c', 'w', 'o')
	if not h[1] or tonumber(h[1]) < now then return nil end
	return {tonumber(h[2]), tonumber(h[3]), tonumber(h[4]), h[5], h[6]}
end

local now = tonumber(ARGV[1])
local s, n, c, w = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local nonce = ARGV[8]
`

// saveScript: KEYS event, consumed; ARGV now, expiry, ttl (ms), s, n, c,
// w, nonce, encoded event, channel, message. It returns 1 if it kept the
// event.
var saveScript = redis.NewScript(luaCommon + `
local e = held(KEYS[1], now)
if e and e[5] == nonce then return 1 end
if e and not supersedes(s, n, c, w, e[1], e[2], e[3], e[4]) then return 0 end
local m = held(KEYS[2], now)
if m and not supersedes(s, n, c, w, m[1], m[2], m[3], m[4]) then return 0 end
redis.call('HSET', KEYS[1], 'x', ARGV[2], 's', ARGV[4], 'n', ARGV[5], 'c', ARGV[6], 'w', ARGV[7], 'o', nonce, 'b', ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[10], ARGV[11])
return 1
`)

// consumeScript: KEYS consumed, event; ARGV now, expiry, ttl (ms), s, n,
// c, w, nonce. It returns 1 if the event was used up by this call. The mark's
// expiry is renewed either way, and the event held is dropped unless it
// supersedes the mark.
var consumeScript = redis.NewScript(luaCommon + `
local m = held(KEYS[1], now)
if m and m[5] == nonce then return 1 end
local used = (m == nil) or supersedes(s, n, c, w, m[1], m[2], m[3], m[4])
if used then
	redis.call('HSET', KEYS[1], 'x', ARGV[2], 's', ARGV[4], 'n', ARGV[5], 'c', ARGV[6], 'w', ARGV[7], 'o', nonce)
	m = {s, n, c, w}
else
	redis.call('HSET', KEYS[1], 'x', ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local e = held(KEYS[2], now)
if e and not supersedes(e[1], e[2], e[3], e[4], m[1], m[2], m[3], m[4]) then
	redis.call('DEL', KEYS[2])
end
if used then return 1 end
return 0
`)
