-- Check a code keyed back for a user's cell: compare in constant time, count wrong
-- codes, burn the code at the last one. Runs after same_hash.lua.
-- KEYS[1] the user's pending cell code (a hash: code_hash, number, expires_at, wrong_codes)
-- ARGV[1] now; ARGV[2] the user's cell as it is now; ARGV[3] HMAC of the code
-- submitted (bound to that cell); ARGV[4] wrong codes that burn the code
-- Reply: verdict (correct | wrong | burned | expired | number-changed | none);
-- on correct also code_hash and number; on wrong remaining (tries left)
local s = redis.call('HMGET', KEYS[1], 'code_hash', 'number', 'expires_at', 'wrong_codes')
if not s[2] then return {'verdict', 'none'} end
if not s[1] then return {'verdict', 'burned'} end
if tonumber(ARGV[1]) >= tonumber(s[3]) then return {'verdict', 'expired'} end
if s[2] ~= ARGV[2] then
  -- Sent to another number than the user's cell now: it proves nothing.
  redis.call('DEL', KEYS[1])
  return {'verdict', 'number-changed'}
end
if same_hash(s[1], ARGV[3]) then
  redis.call('DEL', KEYS[1])
  return {'verdict', 'correct', 'code_hash', s[1], 'number', s[2]}
end
local wrong = redis.call('HINCRBY', KEYS[1], 'wrong_codes', 1)
if wrong >= tonumber(ARGV[4]) then
  redis.call('HDEL', KEYS[1], 'code_hash')
  return {'verdict', 'burned'}
end
return {'verdict', 'wrong', 'remaining', tostring(tonumber(ARGV[4]) - wrong)}
