-- Forget a cell code that could not be sent, only if it is still the one this
-- request stored (a later request may have replaced it).
-- KEYS[1] the user's pending cell code
-- ARGV[1] the code hash this request stored
-- Reply: 1 if forgotten, else 0
if redis.call('HGET', KEYS[1], 'code_hash') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
