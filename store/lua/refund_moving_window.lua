-- Give back one slot a reservation took in a moving window of the limits library.
-- KEYS[1]  the window: a list of entry timestamps, newest first (limits' moving window)
-- ARGV[1]  the timestamp the reservation pushed
-- Returns 1 if an entry of that timestamp was removed, 0 if none was left (it expired).
local taken_at = tonumber(ARGV[1])
local entries = redis.call('lrange', KEYS[1], 0, -1)
for index, entry in ipairs(entries) do
  if tonumber(entry) == taken_at then
    -- LREM removes by value; mark this one entry so that only it goes.
    redis.call('lset', KEYS[1], index - 1, 'refunded')
    redis.call('lrem', KEYS[1], 1, 'refunded')
    return 1
  end
end
return 0
