"""Rate limits on Redis, through the ``limits`` library's moving windows.

A request reserves its slots before it acts: for each rule, one atomic script checks
the window and takes a slot, and all of a request's rules go in one round trip. If the
act then provably did not happen, the slots are refunded. Checking first and spending
after the act would let requests that arrive together all pass the check.

Each script touches one key, so a request's rules may live on different Redis Cluster
nodes (a number's window and a practice's are never in one script).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Generic, TypeVar, cast

import redis
from limits import RateLimitItem
from limits.storage import RedisStorage

from store.errors import LimitExceeded
from store.keys import RATE_LIMITS
from store.redis_client import is_cluster

log = logging.getLogger(__name__)

T = TypeVar("T")

REFUND_SCRIPT = (resources.files("store") / "lua" / "refund_moving_window.lua").read_text()


@dataclass(frozen=True)
class Rule:
    """``limit`` applied to one subject, e.g. 3/hour for practice p-1.

    ``name`` says which limit it is (the setting it comes from, e.g.
    ``verification_calls_per_practice``); ``scope`` keeps its windows apart in Redis.
    """

    name: str
    limit: RateLimitItem
    scope: str
    subject: str


@dataclass(frozen=True)
class Window:
    """A rule's moving window as it stood: slots left, and when the oldest one frees."""

    rule: Rule
    remaining: int
    reset_at: float

    @property
    def open(self) -> bool:
        return self.remaining > 0


@dataclass
class Reservation:
    """Slots taken at ``taken_at``, and the rules that had none left.

    Granted when every rule gave a slot. ``kept`` once the act the slots pay for
    happened (or may have): from then on nothing gives them back.
    """

    taken_at: float
    taken: list[Rule] = field(default_factory=list)
    refused: list[Rule] = field(default_factory=list)
    kept: bool = False

    @property
    def granted(self) -> bool:
        return not self.refused

    def keep(self) -> None:
        """The act happened, or may have: these slots stay spent."""
        self.kept = True


class RateLimiter:
    """Moving-window limits kept in Redis, shared by every worker."""

    # Seconds since the epoch; tests move it to cross windows without sleeping.
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, redis_client: redis.Redis, storage: RedisStorage | None = None) -> None:
        self._redis = redis_client
        # ``limits`` keeps its own client for a cluster or Sentinel URL (limits_storage);
        # on one server it may share this client's connections.
        if storage is None:
            storage = RedisStorage(
                "redis://", connection_pool=redis_client.connection_pool, key_prefix=RATE_LIMITS
            )
        self._storage = storage
        self._refund = redis_client.register_script(REFUND_SCRIPT)

    def batch(self) -> LimitBatch:
        """Collect look-ups, reservations (and other commands) for one Redis round trip."""
        return LimitBatch(self._redis, self._storage, self._refund, self.clock())

    def reserve(self, *rules: Rule) -> Reservation:
        """Take a slot of every rule in one round trip, or raise LimitExceeded.

        A refusal takes a second round trip: it gives back the slots the other rules
        gave, and reads when the refused rules free one, to say how long to wait.
        """
        batch = self.batch()
        reserved = batch.reserve(*rules)
        batch.execute()
        reservation = reserved.value
        if reservation.granted:
            return reservation
        after = self.batch()
        for rule in reservation.taken:
            after.refund(rule, reservation.taken_at)
        windows = [after.window(rule) for rule in reservation.refused]
        try:
            after.execute()
        except redis.RedisError as exc:
            # The slots then lapse with their windows; the refusal stands either way.
            log.warning("refused reservation not given back: %s", type(exc).__name__)
            refused = reservation.refused[0]
            raise LimitExceeded(
                refused.name, str(refused.limit), refused.limit.get_expiry()
            ) from None
        reservation.taken = []
        latest = max((w.value for w in windows), key=lambda window: window.reset_at)
        # Rounded to the millisecond first, so float noise does not add a whole second.
        wait = math.ceil(round(latest.reset_at - after.now, 3))
        raise LimitExceeded(latest.rule.name, str(latest.rule.limit), wait)

    def refund(self, reservation: Reservation) -> None:
        """Give back every slot ``reservation`` took, in one round trip."""
        if reservation.kept or not reservation.taken:
            return
        batch = self.batch()
        for rule in reservation.taken:
            batch.refund(rule, reservation.taken_at)
        batch.execute()
        reservation.taken = []


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
    """Limit look-ups, reservations and spends, plus other commands, in one round trip.

    ``limits`` runs one Lua script per call, a round trip each. A batch queues the
    very same scripts with the same KEYS and ARGV as limits 5's RedisStorage
    (``moving_window.lua``: KEYS[1] the window, ARGV = [now - expiry, amount];
    ``acquire_moving_window.lua``: KEYS[1] the window, ARGV = [now, amount, expiry, 1])
    on one pipeline, so the counts stay those of the library's own limiters; and
    ``store/lua/refund_moving_window.lua`` (KEYS[1] the window, ARGV[1] the entry's time).
    """

    def __init__(
        self, redis_client: redis.Redis, storage: RedisStorage, refund_script: Any, now: float
    ) -> None:
        self.now = now
        self._storage = storage
        self._redis = redis_client
        self._refund_script = refund_script
        # (how to send it on a client or pipeline, its Pending, how to rerun it).
        self._queued: list[tuple[Callable[[Any], Any], Pending[Any], Callable[[Any], Any]]] = []
        # Results made of other results (a reservation of its rules' scripts), made last.
        self._settle: list[Callable[[], None]] = []

    def window(self, rule: Rule) -> Pending[Window]:
        """Queue a look-up of ``rule``'s window (a look only; it takes nothing)."""
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
        """Queue taking a slot of ``rule`` (check and take, atomic); False if it had none."""
        args = [self.now, rule.limit.amount, rule.limit.get_expiry(), 1]
        return self._script(self._storage.lua_acquire_moving_window, rule, args, bool)

    def reserve(self, *rules: Rule) -> Pending[Reservation]:
        """Queue taking a slot of each rule; the reservation says which gave one."""
        spends = [(rule, self.spend(rule)) for rule in rules]
        pending: Pending[Reservation] = Pending(lambda reservation: reservation)

        def settle() -> None:
            reservation = Reservation(self.now)
            for rule, taken in spends:
                (reservation.taken if taken.value else reservation.refused).append(rule)
            pending.resolve(reservation)

        self._settle.append(settle)
        return pending

    def refund(self, rule: Rule, taken_at: float) -> Pending[bool]:
        """Queue giving back the slot of ``rule`` taken at ``taken_at``."""
        return self._script(self._refund_script, rule, [taken_at], bool)

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
        for settle in self._settle:
            settle()

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
