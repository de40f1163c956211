-- Helpers shared by the call-step scripts (call_*.lua), put before each of them
-- when it is loaded (store/scripts.py, ``after=``). Defines no KEYS or ARGV of its own;
-- in every step script KEYS[1] is the call session hash, whose fields are those of
-- CallSession (ivr/session.py).

-- Final statuses rank highest, so nothing ever overwrites one of them.
local RANK = {queued = 0, ringing = 1, ['in-progress'] = 2}
local function rank(status)
  return RANK[status] or 3
end

-- false if the request belongs to this call; else why not. Binds the CallSid
-- on the first webhook when the carrier gave us none at creation.
local function not_this_call(key, call_sid, to)
  local s = redis.call('HMGET', key, 'to', 'call_sid')
  if not s[1] then return 'gone' end
  if s[1] ~= to then return 'mismatch' end
  if s[2] and s[2] ~= '' then
    if s[2] ~= call_sid then return 'mismatch' end
  else
    redis.call('HSET', key, 'call_sid', call_sid)
  end
  return false
end

-- Append the fields an audit event needs to a flat key/value reply.
local function with_audit(key, reply)
  local names = {'practice_id', 'actor', 'requested_by', 'to', 'call_sid', 'purpose'}
  local values = redis.call('HMGET', key, unpack(names))
  for i, name in ipairs(names) do
    table.insert(reply, name)
    table.insert(reply, values[i] or '')
  end
  return reply
end

-- Release the practice's live-call key if it still names this session.
local function release_live(live_key, session_id)
  local live = redis.call('GET', live_key)
  if live and string.sub(live, 1, #session_id + 1) == session_id .. '|' then
    redis.call('DEL', live_key)
  end
end
