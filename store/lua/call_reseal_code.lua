-- Replace a call's sealed challenge code by the same code resealed under the first
-- key, only if unchanged: a code used meanwhile stays deleted.
-- KEYS[1] the call session hash
-- ARGV[1] the sealed code as read; ARGV[2] the same code resealed
-- Reply: 1 if replaced, else 0
if redis.call('HGET', KEYS[1], 'code_sealed') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'code_sealed', ARGV[2])
return 1
