-- Record the carrier's CallSid once the call is placed. Runs after call_prelude.lua.
-- KEYS[1] the call session hash
-- KEYS[2] the practice's live-call key
-- ARGV[1] session id; ARGV[2] CallSid; ARGV[3] the carrier's status (ours)
-- Every KEY carries the practice's hash tag (store/keys.py): one slot on Redis Cluster.
-- Reply: verdict (placed | gone | mismatch)
if redis.call('EXISTS', KEYS[1]) == 0 then return {'verdict', 'gone'} end
local bound = redis.call('HGET', KEYS[1], 'call_sid')
if bound and bound ~= '' and bound ~= ARGV[2] then
  -- A webhook bound another call to this session: trust neither.
  redis.call('HSET', KEYS[1], 'status', 'failed', 'ended', '1')
  redis.call('HDEL', KEYS[1], 'code_hash', 'code_sealed')
  release_live(KEYS[2], ARGV[1])
  return {'verdict', 'mismatch'}
end
redis.call('HSET', KEYS[1], 'call_sid', ARGV[2], 'placed', '1')
if rank(ARGV[3]) < 3 and rank(ARGV[3]) > rank(redis.call('HGET', KEYS[1], 'status')) then
  redis.call('HSET', KEYS[1], 'status', ARGV[3])
end
return {'verdict', 'placed'}
