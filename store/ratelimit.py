"""Rate limits on Redis, through the ``limits`` library.

Callers ``check`` every rule before acting and ``hit`` them only once the
action succeeded, so a request that fails (Twilio down, say) spends no slot.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import redis
from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from core.errors import RateLimited
from store.keys import RATE_LIMITS
from store.redis_client import is_cluster

T = TypeVar("T")


@dataclass(frozen=True)
class Rule:
    """``limit`` applied to one subject, e.g. 3/hour for practice p-1."""

    limit: RateLimitItem
    scope: str
    subject: str

    @classmethod
    def of(cls, limit: str, scope: str, subject: str) -> Rule:
        return cls(_parsed(limit), scope, subject)


@functools.lru_cache(maxsize=64)
def _parsed(limit: str) -> RateLimitItem:
    # A handful of settings ("20/hour"), each parsed by regular expression: once is enough.
    return parse(limit)


class RateLimiter:
    """Moving-window limits kept in Redis, shared by every worker."""

    # Seconds since the epoch for batches; tests move it to cross windows without sleeping.
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, redis_client: redis.Redis, storage: RedisStorage | None = None) -> None:
        # ``limits`` keeps its own client for a cluster or Sentinel URL (limits_storage);
        # on one server it shares this client's connections.
        if storage is None:
            storage = RedisStorage(
                "redis://", connection_pool=redis_client.connection_pool, key_prefix=RATE_LIMITS
            )
        self._redis, self._storage = redis_client, storage
        self._limiter = MovingWindowRateLimiter(storage)

    def check(self, *rules: Rule, message: str = "too many requests, try again later") -> None:
        """Raise RateLimited if any rule has no slot left."""
        for rule in rules:
            if not self._limiter.test(rule.limit, rule.scope, rule.subject):
                reset_at, _remaining = self._limiter.get_window_stats(
                    rule.limit, rule.scope, rule.subject
                )
                raise RateLimited(message, retry_after=math.ceil(reset_at - time.time()))

    def hit(self, *rules: Rule) -> bool:
        """Spend a slot of each rule; False if one of them had none left."""
        return all([self._limiter.hit(rule.limit, rule.scope, rule.subject) for rule in rules])

    def batch(self) -> LimitBatch:
        """Collect look-ups and spends (and other commands) for one Redis round trip."""
        return LimitBatch(self._redis, self._storage, self.clock())


@dataclass(frozen=True)
class Window:
    """A rule's moving window as it stood: slots left, and when the oldest one frees."""

    rule: Rule
    remaining: int
    reset_at: float

    @property
    def open(self) -> bool:
        return self.remaining > 0


def refuse_if_exhausted(
    windows: list[Window], now: float, message: str = "too many requests, try again later"
) -> None:
    """Raise RateLimited, with the longest wait, if any window has no slot left."""
    waits = [w.reset_at - now for w in windows if not w.open]
    if waits:
        raise RateLimited(message, retry_after=math.ceil(max(waits)))


class Pending(Generic[T]):
    """A result that is known once its batch has run."""

    def __init__(self, decode: Callable[[Any], T]) -> None:
        self._decode = decode
        self._value: T | None = None
        self._done = False

    def resolve(self, raw: Any) -> None:
        self._value, self._done = self._decode(raw), True

    @property
    def value(self) -> T:
        if not self._done:
            raise RuntimeError("the batch has not run yet")
        return self._value  # type: ignore[return-value]


class LimitBatch:
    """Limit look-ups and spends, plus any other commands, in one Redis round trip.

    ``limits`` runs one Lua script per ``test`` or ``hit``, a round trip each. A batch
    queues the very same scripts with the same KEYS and ARGV as limits 5's RedisStorage
    (``get_moving_window``: KEYS[1] the window, ARGV = [now - expiry, amount];
    ``acquire_entry``: KEYS[1] the window, ARGV = [now, amount, expiry, 1]) on one
    pipeline, so the counts stay shared with ``RateLimiter.check`` and ``hit``.
    """

    def __init__(self, redis_client: redis.Redis, storage: RedisStorage, now: float) -> None:
        self.now = now
        self._storage = storage
        self._redis = redis_client
        # (how to send it on a client or pipeline, its Pending, how to rerun it).
        self._queued: list[tuple[Callable[[Any], Any], Pending[Any], Callable[[Any], Any]]] = []

    def window(self, rule: Rule) -> Pending[Window]:
        """Queue a look-up of ``rule``'s window (the check; spends nothing)."""
        expiry, amount = rule.limit.get_expiry(), rule.limit.amount

        def decode(raw: Any) -> Window:
            if not raw:
                return Window(rule, amount, self.now)
            oldest, count = float(raw[0]), int(raw[1])
            return Window(rule, amount - count, oldest + expiry)

        return self._script(
            self._storage.lua_moving_window, rule, [self.now - expiry, amount], decode
        )

    def spend(self, rule: Rule) -> Pending[bool]:
        """Queue spending a slot of ``rule``; resolves False if it had none left."""
        args = [self.now, rule.limit.amount, rule.limit.get_expiry(), 1]
        return self._script(self._storage.lua_acquire_moving_window, rule, args, bool)

    def command(self, queue: Callable[[Any], Any]) -> Pending[Any]:
        """Queue another command, e.g. ``batch.command(lambda pipe: pipe.getdel(key))``."""
        pending: Pending[Any] = Pending(lambda raw: raw)
        self._queued.append((queue, pending, lambda _raw: None))
        return pending

    def execute(self) -> None:
        """Run everything queued in one round trip and resolve each Pending.

        A single command goes as it is; several go on one pipeline.
        """
        if not self._queued:
            return
        if len(self._queued) == 1:
            send = self._queued[0][0]
            try:
                results = [send(self._redis)]
            except redis.exceptions.NoScriptError as exc:
                results = [exc]
        else:
            pipeline = self._redis.pipeline(transaction=False)
            for send, _, _ in self._queued:
                send(pipeline)
            results = pipeline.execute(raise_on_error=False)
        for (_, pending, rerun), raw in zip(self._queued, results, strict=True):
            if isinstance(raw, redis.exceptions.NoScriptError):
                # A restarted Redis forgot the scripts; the script object reloads them.
                raw = rerun(raw)
            elif isinstance(raw, Exception):
                raise raw
            pending.resolve(raw)

    def _script(
        self, script: Any, rule: Rule, args: list[Any], decode: Callable[[Any], T]
    ) -> Pending[T]:
        keys = [self._storage.prefixed_key(rule.limit.key_for(rule.scope, rule.subject))]
        pending: Pending[T] = Pending(decode)
        # redis-py 8.1's cluster pipeline refuses evalsha() and would ask a server
        # for an EVALSHA's keys (a round trip each): name the key's master instead.
        route: dict[str, Any] = {}
        if is_cluster(self._redis):
            route["target_nodes"] = cast(Any, self._redis).get_node_from_key(keys[0])
        self._queued.append(
            (
                lambda target: target.execute_command(
                    "EVALSHA", script.sha, len(keys), *keys, *args, **route
                ),
                pending,
                lambda _raw: script(keys, args),
            )
        )
        return pending
