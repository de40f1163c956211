"""The call's challenge: the code keyed in checked, misses and silences counted, three misses lock.

Support relays the code to the requester (or the main application shows it to an
admin, for an office-number call); whoever answers the office phone keys it in.
The code is a one-time code (store/onetime.py), bound to its call session.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from ivr import session
from store import keys
from store.onetime import MAX_WRONG_CODES, SAME_HASH_LUA, code_hash, same_code
from store.scripts import run_script

# Silence on the line is met with a new prompt at most this many times.
MAX_REPROMPTS = 2


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


def check_code(
    client: redis.Redis, call: session.CallerCheck, *, digits: str, secret_key: str, now: float
) -> CodeCheck:
    """Check the digits keyed in on this call; count misses and silences; lock at three misses."""
    submitted = code_hash(secret_key, call.session_id, digits) if digits else ""
    reply = run_script(
        client,
        _SUBMIT_CODE,
        [keys.call_session(call.session_id)],
        [now, call.call_sid, call.to, submitted, MAX_WRONG_CODES, MAX_REPROMPTS],
    )
    verdict = reply["verdict"]
    # Belt and braces: disclose only if Python's own comparison agrees with the script's.
    if verdict == "correct" and not same_code(reply.get("code_hash", ""), submitted):
        verdict = "ended"
    audit = reply if verdict in ("correct", "locked") else None
    return CodeCheck(verdict=verdict, remaining=int(reply.get("remaining") or 0), audit=audit)
