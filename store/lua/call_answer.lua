-- The call was answered: by a person, by a machine, or too late. Runs after call_prelude.lua.
-- KEYS[1] the call session hash
-- ARGV[1] now; ARGV[2] CallSid; ARGV[3] To; ARGV[4] '1' if a machine answered
-- Reply: verdict (answered | voicemail | ended | expired | gone | mismatch),
-- practice_name, language, purpose; on voicemail also the audit fields.
local why = not_this_call(KEYS[1], ARGV[2], ARGV[3])
if why then return {'verdict', why} end
local s = redis.call(
  'HMGET', KEYS[1], 'status', 'expires_at', 'practice_name', 'language', 'purpose')
local reply = {'practice_name', s[3], 'language', s[4], 'purpose', s[5] or ''}
if rank(s[1]) == 3 then
  table.insert(reply, 'verdict'); table.insert(reply, 'ended'); return reply
end
if tonumber(ARGV[1]) >= tonumber(s[2]) then
  table.insert(reply, 'verdict'); table.insert(reply, 'expired'); return reply
end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'status', 'voicemail')
  redis.call('HDEL', KEYS[1], 'code_hash', 'code_sealed')
  table.insert(reply, 'verdict'); table.insert(reply, 'voicemail')
  return with_audit(KEYS[1], reply)
end
if rank(s[1]) < 2 then redis.call('HSET', KEYS[1], 'status', 'in-progress') end
table.insert(reply, 'verdict'); table.insert(reply, 'answered')
return reply
