-- Apply the carrier's status callback; a final status ends the call and frees the
-- practice. Runs after call_prelude.lua.
-- KEYS[1] the call session hash
-- KEYS[2] the practice's live-call key
-- ARGV[1] session id; ARGV[2] CallSid; ARGV[3] To; ARGV[4] the reported status (ours)
-- Every KEY carries the practice's hash tag (store/keys.py): one slot on Redis Cluster.
-- Reply: verdict (changed | kept | gone | mismatch), status (as it now stands),
-- and the audit fields
local why = not_this_call(KEYS[1], ARGV[2], ARGV[3])
if why then return {'verdict', why} end
local current = redis.call('HGET', KEYS[1], 'status')
local reply = {'verdict', 'kept', 'status', current}
if rank(ARGV[4]) > rank(current) then
  redis.call('HSET', KEYS[1], 'status', ARGV[4])
  reply = {'verdict', 'changed', 'status', ARGV[4]}
end
if rank(ARGV[4]) == 3 then
  -- The call is over: nothing more may be keyed in, and the practice is free.
  redis.call('HSET', KEYS[1], 'ended', '1')
  redis.call('HDEL', KEYS[1], 'code_hash', 'code_sealed')
  release_live(KEYS[2], ARGV[1])
end
return with_audit(KEYS[1], reply)
