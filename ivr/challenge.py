"""The one-time challenge code: made, stored hashed, checked, and locked after three misses.

Support relays the code to the requester; whoever answers the office phone keys
it in. The code is 6 digits from ``secrets``, lives 10 minutes, works once, and
is kept only as an HMAC bound to its session, so Redis never holds it in clear.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import redis

from ivr import session
from store import keys, replication

CODE_DIGITS = 6
CODE_LIFETIME = 10 * 60
MAX_WRONG_CODES = 3
# Silence on the line is met with a new prompt at most this many times.
MAX_REPROMPTS = 2


def new_code() -> str:
    """Six random digits."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(secret_key: str, session_id: str, code: str) -> str:
    """HMAC-SHA256 of the code, bound to its session so it works on no other call."""
    message = f"challenge-code:{session_id}:{code}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def same_code(expected_hash: str, submitted_hash: str) -> bool:
    """Whether two code hashes are equal, compared in constant time."""
    return hmac.compare_digest(expected_hash.encode(), submitted_hash.encode())


# A Lua function comparing two hashes in constant time (XOR every byte, then test once).
SAME_HASH_LUA = """
local function same_hash(a, b)
  local diff = (#a == #b) and 0 or 1
  for i = 1, math.min(#a, #b) do
    diff = bit.bor(diff, bit.bxor(string.byte(a, i), string.byte(b, i)))
  end
  return diff == 0
end
"""

# The Gather step, atomically: one round trip decides and counts.
# KEYS[1] session hash; ARGV[1] now, ARGV[2] CallSid, ARGV[3] To,
# ARGV[4] HMAC of the digits keyed in ('' when nothing was), ARGV[5] wrong codes
# that lock the call, ARGV[6] re-prompts allowed after silence.
# The right code discloses the codeword, or on an office-number call verifies the number.
_SUBMIT_CODE = session.step_script(
    SAME_HASH_LUA
    + """
local why = not_this_call(KEYS[1], ARGV[2], ARGV[3])
if why then return {'verdict', why} end
local s = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'code_hash')
if s[1] ~= 'in-progress' or not s[3] then return {'verdict', 'ended'} end
if tonumber(ARGV[1]) >= tonumber(s[2]) then return {'verdict', 'expired'} end
if ARGV[4] == '' then
  local silences = redis.call('HINCRBY', KEYS[1], 'silences', 1)
  if silences > tonumber(ARGV[6]) then return {'verdict', 'silent'} end
  return {'verdict', 'reprompt'}
end
local a = s[3]
if same_hash(a, ARGV[4]) then
  -- Single use: the code is gone the moment it is accepted.
  local office = redis.call('HGET', KEYS[1], 'purpose') == 'office'
  redis.call('HSET', KEYS[1], 'status', office and 'verified' or 'disclosed')
  redis.call('HDEL', KEYS[1], 'code_hash', 'code_sealed')
  local name = redis.call('HGET', KEYS[1], 'practice_name') or ''
  return with_audit(KEYS[1], {'verdict', 'correct', 'code_hash', a, 'practice_name', name})
end
local wrong = redis.call('HINCRBY', KEYS[1], 'wrong_codes', 1)
if wrong >= tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[1], 'status', 'locked')
  redis.call('HDEL', KEYS[1], 'code_hash', 'code_sealed')
  return with_audit(KEYS[1], {'verdict', 'locked'})
end
return {'verdict', 'wrong', 'remaining', tostring(tonumber(ARGV[5]) - wrong)}
"""
)


@dataclass(frozen=True)
class CodeCheck:
    """What keying in (or not keying in) a code led to."""

    verdict: str  # correct | wrong | locked | reprompt | silent | expired | ended | gone | mismatch
    remaining: int = 0
    audit: dict[str, str] | None = None


# Verdicts whose write a failover must not undo: the disclosed (or verified) mark, a miss.
ONE_TIME_WRITES = ("correct", "wrong", "locked")


def check_code(
    client: redis.Redis,
    call: session.CallerCheck,
    *,
    digits: str,
    secret_key: str,
    now: float,
    replicas: int = 0,
) -> CodeCheck:
    """Check the digits keyed in on this call; count misses and silences; lock at three misses.

    A right code or a miss counts only once ``replicas`` replicas hold it (WAIT):
    otherwise NotReplicated is raised, the caller hears an apology and the call
    ends, so a failover cannot bring back a used code or a spent try.
    """
    submitted = code_hash(secret_key, call.session_id, digits) if digits else ""
    session_key = keys.call_session(call.session_id)
    with replication.one_connection(client, session_key) as connection:
        reply = session.flat_reply(
            connection.run(
                session.script(client, _SUBMIT_CODE),
                [session_key],
                [now, call.call_sid, call.to, submitted, MAX_WRONG_CODES, MAX_REPROMPTS],
            )
        )
        verdict = reply["verdict"]
        acknowledged = verdict not in ONE_TIME_WRITES or connection.replicated(replicas)
    if not acknowledged:
        if verdict == "correct":
            # Nothing will be read out: the call ends as failed, not disclosed.
            with contextlib.suppress(redis.RedisError):
                session.undo_disclosure(client, call.session_id)
        raise replication.NotReplicated(f"no replica acknowledged a {verdict} code in time")
    # Belt and braces: disclose only if Python's own comparison agrees with the script's.
    if verdict == "correct" and not same_code(reply.get("code_hash", ""), submitted):
        verdict = "ended"
    audit = reply if verdict in ("correct", "locked") else None
    return CodeCheck(verdict=verdict, remaining=int(reply.get("remaining") or 0), audit=audit)
