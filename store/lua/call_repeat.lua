-- After the codeword was read: may it be read again? Runs after call_prelude.lua.
-- KEYS[1] the call session hash
-- ARGV[1] now; ARGV[2] CallSid; ARGV[3] To; ARGV[4] the key pressed;
-- ARGV[5] how many repeats a call may have
-- Reply: verdict (repeat | goodbye | ended | expired | gone | mismatch);
-- on repeat also remaining (repeats left after this one)
local why = not_this_call(KEYS[1], ARGV[2], ARGV[3])
if why then return {'verdict', why} end
local s = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'ended')
if s[1] ~= 'disclosed' or s[3] == '1' then return {'verdict', 'ended'} end
if tonumber(ARGV[1]) >= tonumber(s[2]) then return {'verdict', 'expired'} end
if ARGV[4] ~= '1' then return {'verdict', 'goodbye'} end
local n = redis.call('HINCRBY', KEYS[1], 'repeats', 1)
if n > tonumber(ARGV[5]) then return {'verdict', 'goodbye'} end
return {'verdict', 'repeat', 'remaining', tostring(tonumber(ARGV[5]) - n)}
