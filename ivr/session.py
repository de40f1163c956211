"""A verification call's state in Redis, and the Lua scripts that move it on.

One hash per call session (``keys.call_session``) holds everything a webhook
needs, so answering the call reads no SQL. Every webhook step is one script,
one round trip: it checks that the request belongs to this call (CallSid, To),
that the session is still open, and records what happened, atomically.

A practice's live call is ``keys.live_call``: ``<session id>|<expires at>``.
It is released by the call's final status callback, and counts as released
once its expiry has passed even if Redis still holds the key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from weakref import WeakKeyDictionary

import redis
from redis.commands.core import Script

from store import keys

# What a call is for: reading the codeword (support asks), or proving the office
# number (an admin asks). The session's ``purpose`` field; absent means the codeword.
CODEWORD = "codeword"
OFFICE = "office"

# Our statuses (the contract's), in the order a call moves through them.
IN_PROGRESS = ("queued", "ringing", "in-progress")
FINAL = (
    "disclosed",
    "verified",
    "locked",
    "voicemail",
    "completed",
    "no-answer",
    "busy",
    "failed",
    "canceled",
)
EXPIRED = "expired"

# Twilio's CallStatus values as our statuses.
TWILIO_STATUSES = {
    "queued": "queued",
    "initiated": "queued",
    "ringing": "ringing",
    "in-progress": "in-progress",
    "answered": "in-progress",
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "canceled",
}

# Sessions stay readable (GET, idempotent repeats) this long after they are made.
RETENTION = 24 * 3600
IDEMPOTENCY_TTL = 24 * 3600

# Shared by the step scripts. KEYS[1] is always the call session hash.
# Final statuses rank highest, so nothing ever overwrites one of them.
_PRELUDE = """
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
"""

# KEYS[1] new session hash, KEYS[2] the practice's live-call key,
# KEYS[3] (optional) the idempotency key.
# ARGV[1] now, ARGV[2] session id, ARGV[3] expires at, ARGV[4] live-call TTL,
# ARGV[5] session TTL, ARGV[6] idempotency TTL, ARGV[7..] the session's field/value pairs.
_RESERVE = """
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
"""

# KEYS[1] session hash, KEYS[2] live-call key; ARGV[1] session id, ARGV[2] CallSid,
# ARGV[3] the carrier's status (ours).
_MARK_PLACED = (
    _PRELUDE
    + """
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
"""
)

# KEYS[1] session hash, KEYS[2] live-call key, KEYS[3] (optional) idempotency key;
# ARGV[1] session id.
_ROLLBACK = (
    _PRELUDE
    + """
redis.call('DEL', KEYS[1])
release_live(KEYS[2], ARGV[1])
if KEYS[3] and redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return {'verdict', 'rolled-back'}
"""
)

# KEYS[1] session hash; ARGV[1] now, ARGV[2] CallSid, ARGV[3] To,
# ARGV[4] '1' if a machine answered.
_ANSWER = (
    _PRELUDE
    + """
local why = not_this_call(KEYS[1], ARGV[2], ARGV[3])
if why then return {'verdict', why} end
local s = redis.call(
  'HMGET', KEYS[1], 'status', 'expires_at', 'practice_name', 'language', 'purpose')
local reply = {'practice_name', s[3], 'language', s[4], 'purpose', s[5] or ''}
if rank(s[1]) == 3 then
  table.insert(reply, 'verdict'); table.insert(reply, 'ended'); return reply
end
if tonumber(ARGV[1]) >= tonumber(s[2]) then
  table.insert(reply, 'verdict'); table.insert(reply, 'expired'); return reply
end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'status', 'voicemail')
  redis.call('HDEL', KEYS[1], 'code_hash', 'code_sealed')
  table.insert(reply, 'verdict'); table.insert(reply, 'voicemail')
  return with_audit(KEYS[1], reply)
end
if rank(s[1]) < 2 then redis.call('HSET', KEYS[1], 'status', 'in-progress') end
table.insert(reply, 'verdict'); table.insert(reply, 'answered')
return reply
"""
)

# KEYS[1] session hash; ARGV[1] now, ARGV[2] CallSid, ARGV[3] To,
# ARGV[4] the key pressed, ARGV[5] how many repeats a call may have.
_REPEAT = (
    _PRELUDE
    + """
local why = not_this_call(KEYS[1], ARGV[2], ARGV[3])
if why then return {'verdict', why} end
local s = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'ended')
if s[1] ~= 'disclosed' or s[3] == '1' then return {'verdict', 'ended'} end
if tonumber(ARGV[1]) >= tonumber(s[2]) then return {'verdict', 'expired'} end
if ARGV[4] ~= '1' then return {'verdict', 'goodbye'} end
local n = redis.call('HINCRBY', KEYS[1], 'repeats', 1)
if n > tonumber(ARGV[5]) then return {'verdict', 'goodbye'} end
return {'verdict', 'repeat', 'remaining', tostring(tonumber(ARGV[5]) - n)}
"""
)

# KEYS[1] session hash, KEYS[2] live-call key; ARGV[1] session id, ARGV[2] CallSid,
# ARGV[3] To, ARGV[4] the reported status (ours).
_STATUS = (
    _PRELUDE
    + """
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
"""
)

# KEYS[1] session hash. The codeword could not be read (or the office number not
# marked verified) after the right code.
_UNDO_DISCLOSURE = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'disclosed' and status ~= 'verified' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'failed')
return 1
"""


_SCRIPTS: WeakKeyDictionary[redis.Redis, dict[str, Script]] = WeakKeyDictionary()


def script(client: redis.Redis, source: str) -> Script:
    """``client``'s script object for ``source``, made once (it hashes the source)."""
    scripts = _SCRIPTS.get(client)
    if scripts is None:
        scripts = _SCRIPTS.setdefault(client, {})
    found = scripts.get(source)
    if found is None:
        found = scripts.setdefault(source, client.register_script(source))
    return found


def run_script(
    client: redis.Redis, source: str, keys_: list[str], args: list[Any]
) -> dict[str, str]:
    """Run a Lua script (EVALSHA, one round trip) whose reply is flat key/value pairs."""
    return flat_reply(script(client, source)(keys=keys_, args=args))


def flat_reply(reply: Any) -> dict[str, str]:
    """A script's flat key/value reply as a dict."""
    items = cast(list[Any], reply)
    return {
        str(k): ("" if v is None else str(v)) for k, v in zip(items[::2], items[1::2], strict=True)
    }


def step_script(body: str) -> str:
    """A call-step script: the shared helpers, then ``body``."""
    return _PRELUDE + body


@dataclass(frozen=True)
class CallSession:
    """A verification call as Redis holds it."""

    id: str
    practice_id: str
    practice_name: str
    language: str
    to: str
    actor: str
    requested_by: str
    status: str
    created_at: float
    expires_at: float
    call_sid: str | None
    code_sealed: str | None
    placed: bool
    purpose: str = CODEWORD

    @classmethod
    def from_hash(cls, session_id: str, fields: dict[str, str]) -> CallSession:
        return cls(
            id=session_id,
            practice_id=fields["practice_id"],
            practice_name=fields.get("practice_name", ""),
            language=fields.get("language", "en"),
            to=fields["to"],
            actor=fields.get("actor", ""),
            requested_by=fields.get("requested_by", ""),
            status=fields.get("status", "queued"),
            created_at=float(fields["created_at"]),
            expires_at=float(fields["expires_at"]),
            call_sid=fields.get("call_sid") or None,
            code_sealed=fields.get("code_sealed") or None,
            placed=fields.get("placed") == "1",
            purpose=fields.get("purpose") or CODEWORD,
        )

    def status_at(self, now: float) -> str:
        """The status as callers see it: an unfinished call past its expiry is ``expired``."""
        if self.status not in FINAL and now >= self.expires_at:
            return EXPIRED
        return self.status


def iso(timestamp: float) -> str:
    """An epoch time as ISO 8601 in UTC."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


# Creating a session (the support API) -------------------------------------------


def reserve(
    client: redis.Redis,
    *,
    session_id: str,
    practice_id: str,
    idempotency_redis_key: str | None,
    now: float,
    lifetime: int,
    fields: dict[str, str],
) -> tuple[str, str]:
    """Create the session and claim the practice's live call, unless one is live.

    Returns (verdict, session id): ``created``, ``live`` (naming the live call)
    or ``idempotent`` (naming the call this idempotency key already made).
    """
    keys_ = [keys.call_session(session_id), keys.live_call(practice_id)]
    if idempotency_redis_key:
        keys_.append(idempotency_redis_key)
    expires_at = now + lifetime
    pairs = [item for pair in fields.items() for item in pair]
    reply = run_script(
        client,
        _RESERVE,
        keys_,
        [now, session_id, expires_at, lifetime, RETENTION, IDEMPOTENCY_TTL, *pairs],
    )
    return reply["verdict"], reply["id"]


def mark_placed(
    client: redis.Redis, session_id: str, practice_id: str, call_sid: str, status: str
) -> bool:
    """Record the carrier's CallSid; False if a webhook already bound another call."""
    reply = run_script(
        client,
        _MARK_PLACED,
        [keys.call_session(session_id), keys.live_call(practice_id)],
        [session_id, call_sid, status],
    )
    return reply["verdict"] != "mismatch"


def rollback(
    client: redis.Redis, session_id: str, practice_id: str, idempotency_redis_key: str | None
) -> None:
    """Forget a session whose call could not be placed, freeing the practice and the key."""
    keys_ = [keys.call_session(session_id), keys.live_call(practice_id)]
    if idempotency_redis_key:
        keys_.append(idempotency_redis_key)
    run_script(client, _ROLLBACK, keys_, [session_id])


def load(client: redis.Redis, session_id: str) -> CallSession | None:
    """The session, or None once it is gone."""
    fields = cast(dict[str, str], client.hgetall(keys.call_session(session_id)))
    if not fields or "practice_id" not in fields:
        return None
    return CallSession.from_hash(session_id, fields)


def idempotent_session_id(client: redis.Redis, idempotency_redis_key: str) -> str | None:
    """The session an idempotency key already made, if any."""
    return cast(str | None, client.get(idempotency_redis_key))


def idempotency_key_owner(
    client: redis.Redis, actor: str, idempotency_key: str, practice_id: str
) -> str:
    """The practice an ``Idempotency-Key`` belongs to: ``practice_id`` if it is new.

    The key's calls live in their practice's hash slot; this one record (SET NX
    GET, atomic) remembers which practice the key was first used for.
    """
    owner = client.set(
        keys.idempotency_owner(actor, idempotency_key),
        practice_id,
        nx=True,
        get=True,
        ex=IDEMPOTENCY_TTL,
    )
    return cast(str | None, owner) or practice_id


# Webhook steps ------------------------------------------------------------------


@dataclass(frozen=True)
class CallerCheck:
    """What a webhook says about the call it belongs to."""

    session_id: str
    call_sid: str
    to: str


def answer(client: redis.Redis, call: CallerCheck, *, machine: bool, now: float) -> dict[str, str]:
    """The call was answered: by a person (``answered``), a machine (``voicemail``), or too late."""
    return run_script(
        client,
        _ANSWER,
        [keys.call_session(call.session_id)],
        [now, call.call_sid, call.to, "1" if machine else "0"],
    )


def repeat(
    client: redis.Redis, call: CallerCheck, *, pressed: str, max_repeats: int, now: float
) -> dict[str, str]:
    """After the codeword was read: may it be read again (``repeat``) or is it ``goodbye``?"""
    return run_script(
        client,
        _REPEAT,
        [keys.call_session(call.session_id)],
        [now, call.call_sid, call.to, pressed, max_repeats],
    )


def record_status(
    client: redis.Redis, call: CallerCheck, *, practice_id: str, status: str
) -> dict[str, str]:
    """Apply a status callback; a final status ends the call and frees the practice."""
    return run_script(
        client,
        _STATUS,
        [keys.call_session(call.session_id), keys.live_call(practice_id)],
        [call.session_id, call.call_sid, call.to, status],
    )


# KEYS[1] session hash; ARGV[1] the sealed code as read, ARGV[2] the same code resealed.
# Replaced only if unchanged: a code used meanwhile stays deleted.
_RESEAL = """
if redis.call('HGET', KEYS[1], 'code_sealed') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'code_sealed', ARGV[2])
return 1
"""


def reseal_codes(client: redis.Redis, reseal: Callable[[bytes], bytes]) -> int:
    """Re-encrypt every call's sealed challenge code with ``reseal``; returns how many.

    Codes are sealed (CODEWORD_KEYS) only for idempotent repeats of a support request.
    """
    swap = script(client, _RESEAL)
    count = 0
    for key in client.scan_iter(match=keys.ALL_CALL_SESSIONS, count=500):
        sealed = cast(str | None, client.hget(key, "code_sealed"))
        if sealed:
            resealed = reseal(sealed.encode()).decode()
            count += int(cast(int, swap(keys=[key], args=[sealed, resealed])))
    return count


def undo_disclosure(client: redis.Redis, session_id: str) -> bool:
    """Mark a call ``failed`` whose right code led nowhere (codeword unread, number unmarked)."""
    undo = script(client, _UNDO_DISCLOSURE)
    return bool(undo(keys=[keys.call_session(session_id)]))
