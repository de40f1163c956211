-- Forget a session whose call could not be placed, freeing the practice and the
-- idempotency key. Runs after call_prelude.lua.
-- KEYS[1] the call session hash
-- KEYS[2] the practice's live-call key
-- KEYS[3] (optional) the idempotency key
-- ARGV[1] session id
-- Every KEY carries the practice's hash tag (store/keys.py): one slot on Redis Cluster.
-- Reply: verdict (rolled-back)
redis.call('DEL', KEYS[1])
release_live(KEYS[2], ARGV[1])
if KEYS[3] and redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return {'verdict', 'rolled-back'}
