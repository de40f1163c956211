-- Create a call session and claim the practice's live call, unless one is live
-- (or this idempotency key already made a call).
-- KEYS[1] the new call session hash
-- KEYS[2] the practice's live-call key
-- KEYS[3] (optional) the idempotency key
-- ARGV[1] now; ARGV[2] session id; ARGV[3] expires at; ARGV[4] live-call TTL;
-- ARGV[5] session TTL; ARGV[6] idempotency TTL; ARGV[7..] the session's field/value pairs
-- Every KEY carries the practice's hash tag (store/keys.py): one slot on Redis Cluster.
-- Reply: verdict (created | live | idempotent), id (the session created or named)
if KEYS[3] then
  local existing = redis.call('GET', KEYS[3])
  if existing then return {'verdict', 'idempotent', 'id', existing} end
end
local live = redis.call('GET', KEYS[2])
if live then
  local sep = string.find(live, '|', 1, true)
  if sep and tonumber(ARGV[1]) < tonumber(string.sub(live, sep + 1)) then
    return {'verdict', 'live', 'id', string.sub(live, 1, sep - 1)}
  end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('SET', KEYS[2], ARGV[2] .. '|' .. ARGV[3], 'EX', ARGV[4])
if KEYS[3] then redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[6]) end
return {'verdict', 'created', 'id', ARGV[2]}
