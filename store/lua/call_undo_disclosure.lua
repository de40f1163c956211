-- The codeword could not be read (or the office number not marked verified) after
-- the right code: mark the call failed.
-- KEYS[1] the call session hash
-- Reply: 1 if the call was marked failed, 0 if it was in no such state
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'disclosed' and status ~= 'verified' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'failed')
return 1
