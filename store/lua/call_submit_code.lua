-- The Gather step, atomically: one round trip decides and counts. The right code
-- discloses the codeword, or on an office-number call verifies the number.
-- Runs after call_prelude.lua and same_hash.lua.
-- KEYS[1] the call session hash
-- ARGV[1] now; ARGV[2] CallSid; ARGV[3] To; ARGV[4] HMAC of the digits keyed in
-- ('' when nothing was); ARGV[5] wrong codes that lock the call;
-- ARGV[6] re-prompts allowed after silence
-- Reply: verdict (correct | wrong | locked | reprompt | silent | ended | expired | gone |
-- mismatch); on correct also code_hash, practice_name and the audit fields; on locked
-- the audit fields; on wrong remaining (tries left)
local why = not_this_call(KEYS[1], ARGV[2], ARGV[3])
if why then return {'verdict', why} end
local s = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'code_hash')
if s[1] ~= 'in-progress' or not s[3] then return {'verdict', 'ended'} end
if tonumber(ARGV[1]) >= tonumber(s[2]) then return {'verdict', 'expired'} end
if ARGV[4] == '' then
  local silences = redis.call('HINCRBY', KEYS[1], 'silences', 1)
  if silences > tonumber(ARGV[6]) then return {'verdict', 'silent'} end
  return {'verdict', 'reprompt'}
end
local a = s[3]
if same_hash(a, ARGV[4]) then
  -- Single use: the code is gone the moment it is accepted.
  local office = redis.call('HGET', KEYS[1], 'purpose') == 'office'
  redis.call('HSET', KEYS[1], 'status', office and 'verified' or 'disclosed')
  redis.call('HDEL', KEYS[1], 'code_hash', 'code_sealed')
  local name = redis.call('HGET', KEYS[1], 'practice_name') or ''
  return with_audit(KEYS[1], {'verdict', 'correct', 'code_hash', a, 'practice_name', name})
end
local wrong = redis.call('HINCRBY', KEYS[1], 'wrong_codes', 1)
if wrong >= tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[1], 'status', 'locked')
  redis.call('HDEL', KEYS[1], 'code_hash', 'code_sealed')
  return with_audit(KEYS[1], {'verdict', 'locked'})
end
return {'verdict', 'wrong', 'remaining', tostring(tonumber(ARGV[5]) - wrong)}
