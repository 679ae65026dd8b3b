"""One leader per feed: a Redis lease with a fencing token, and the standby's side of it.

Several ingesters may run for the same feed (``INGESTER_NAME``, per shard), on one host or
several. Each keeps its own socket and builds the same batches; only the one holding the
lease publishes them. The others stand by: their publisher holds the last
``INGEST_STANDBY_BUFFER_S`` of batches instead of sending them (``publisher``).

Why nothing is lost when the leader dies (SIGKILL, host loss, cut off from Redis):

- The leader journals, fenced by its token, the newest event time it has *published* per
  key and over all keys (``gaps.GapJournal``, written every quarter second). The feed's
  record is complete up to there.
- The lease lives ``INGEST_LEASE_TTL_S``; the leader renews it every sixth of that. A
  standby that finds it gone takes it with a fresh token (``INCR`` of the fence counter),
  reads the journal, and publishes everything it holds from the journal's newest time less
  a margin (``pipeline.TAKEOVER_MARGIN_MS``). Its buffer reaches back further than the dead
  leader's unpublished tail, so the handover loses nothing either socket received; what it
  cannot cover becomes a gap record (``gaps.GapTracker.take_over``).
- A leader that cannot renew (Redis unreachable) stops publishing once its lease may have
  expired by its own clock, before anyone else can hold it, and stands by. A leader that
  finds another's value in the key stops at once.
- Split brain — a paused leader publishing after its lease passed on — can only publish
  batches the new leader also publishes: duplicates, which the unique keys absorb. Journal
  writes carry the token and are refused for a stale one, so a deposed leader can never
  move the feed's record forward past what it stored.

A standby that is not ready (socket down) waits one extra TTL before taking a free lease,
so a ready one wins when there is one. A leader stopping (SIGTERM) hands over: it drains,
journals, and releases the lease at once instead of letting it expire; if another
ingester of the feed is ready, its shutdown gaps go to the journal only (the standby's
buffer covers them).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import orjson
import redis

from runtime import keys
from runtime.clock import Clock
from runtime.lifecycle import join_in_slices
from runtime.metrics import LEADER, LEASE_LOST, TAKEOVERS, Metrics
from workers.ingester.gaps import JournalState, parse_journal

log = logging.getLogger(__name__)

# The leader renews this many times per TTL: one or two lost round trips do not cost it
# the lease.
RENEWALS_PER_TTL = 6
# A leader stops publishing this share of the TTL after its last successful renewal
# started, before the key can expire in Redis (clock rates differ a little).
SELF_EXPIRY_SHARE = 0.8
CANDIDATES_TTL_S = 86_400

# KEYS[1] lease, KEYS[2] fence counter. ARGV[1] owner, ARGV[2] ttl ms → token or nil.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return token
"""
# KEYS[1] lease. ARGV[1] value, ARGV[2] ttl ms → 1 renewed, 0 not ours.
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
# KEYS[1] lease, KEYS[2] open gaps, KEYS[3] newest. ARGV[1] lease value ('' for a sole
# ingester without a lease), ARGV[2] JSON {newest: {field: "ms"}, open: {field: doc},
# closed: [field]} → 1 written, 0 fenced off. A newest time of -1 deletes the field
# (gaps.FORGET: the key is no longer followed).
_JOURNAL = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local d = cjson.decode(ARGV[2])
for f, ms in pairs(d.newest) do
  if ms == '-1' then
    redis.call('HDEL', KEYS[3], f)
  else
    local cur = tonumber(redis.call('HGET', KEYS[3], f))
    if cur == nil or tonumber(ms) > cur then redis.call('HSET', KEYS[3], f, ms) end
  end
end
for f, doc in pairs(d.open) do redis.call('HSET', KEYS[2], f, doc) end
for _, f in ipairs(d.closed) do redis.call('HDEL', KEYS[2], f) end
return 1
"""


class Leadership:
    """Who publishes, shared by the lease keeper, pipeline, publisher and cache writer.

    ``fence`` is set while the lease is held (from acquisition); ``leading`` only once the
    pipeline has settled the gaps (:meth:`promote`): until then the publisher keeps holding.
    """

    def __init__(self, sole: bool = False) -> None:
        self._lock = threading.Lock()
        self.is_sole = sole
        self.leading = sole
        self.fence: str | None = None
        self._settling = 0  # pipelines still to settle their gaps before publishing
        self._promotions: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self.evicted_newest_ms = 0  # newest event time a standby dropped from its buffer
        # Another ingester holds the lease (as last read): a standby then keeps only its
        # window; otherwise it keeps what an outage buffer would.
        self.other_leads = False
        self.generation = 0  # bumps at every change, for the publisher to notice

    @classmethod
    def sole(cls) -> Leadership:
        """Always leading, never fenced: one ingester with no lease (tests, tools)."""
        return cls(sole=True)

    def acquired(self, fence: str, parties: int = 1) -> None:
        """The lease is ours; ``parties`` pipelines (one per connection) must settle their
        gaps (:meth:`promote`) before the publisher sends anything."""
        with self._lock:
            self.fence = fence
            self._settling = parties
            self.generation += 1

    def promote(self, cutoff_ms: int | None, fence: str | None) -> bool:
        """One pipeline has settled the takeover under ``fence``; once all have, publish
        from ``cutoff_ms`` (exchange time; None: everything held) on. Every pipeline
        computes the same cutoff. False, and nothing changes, when that lease is no longer
        held (lost, or taken again since): a stale takeover must not make anyone lead."""
        with self._lock:
            if fence is None or fence != self.fence:
                return False
            self._settling -= 1
            if self._settling > 0:
                return True
            self._promotions.put(cutoff_ms)
            self.leading = True
            self.generation += 1
            return True

    def take_promotion(self) -> tuple[bool, int | None]:
        """(True, cutoff) once after each :meth:`promote`, for the publisher."""
        try:
            return True, self._promotions.get_nowait()
        except queue.Empty:
            return False, None

    def lost(self) -> None:
        with self._lock:
            self.leading = False
            self.fence = None
            self._settling = 0
            self.other_leads = False
            self.generation += 1

    @property
    def awaiting_promotion(self) -> bool:
        """The lease is ours but the pipeline has not settled the gaps yet."""
        return self.fence is not None and not self.leading


def fenced_journal_write(
    client: redis.Redis,
    feed: str,
    fence: str | None,
    newest: dict[str, int],
    changes: dict[str, bytes | None],
) -> bool:
    """Write the journal's changes if ``fence`` still holds the lease (None: a sole
    ingester, unfenced); False if it does not."""
    payload = orjson.dumps(
        {
            "newest": {name: str(ms) for name, ms in newest.items()},
            "open": {name: doc.decode() for name, doc in changes.items() if doc is not None},
            "closed": [name for name, doc in changes.items() if doc is None],
        }
    )
    keys_ = (
        keys.INGEST_LEASE.name(feed=feed),
        keys.GAPS_OPEN.name(feed=feed),
        keys.GAPS_NEWEST.name(feed=feed),
    )
    return bool(client.eval(_JOURNAL, 3, *keys_, fence or "", payload))


def read_journal(client: redis.Redis, feed: str) -> JournalState:
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.GAPS_OPEN.name(feed=feed))
    pipe.hgetall(keys.GAPS_NEWEST.name(feed=feed))
    raw_open, raw_newest = pipe.execute()
    return parse_journal(raw_open, raw_newest, log)


class LeaseKeeper(threading.Thread):
    """Takes, renews and gives up the feed's lease; tells the others how it stands."""

    def __init__(
        self,
        client: redis.Redis,
        feed: str,
        owner: str,
        ttl_s: float,
        leadership: Leadership,
        clock: Clock,
        metrics: Metrics,
        ready: Callable[[], bool],
        on_acquired: Callable[[JournalState], None],
        parties: int = 1,
    ) -> None:
        super().__init__(name="ingest-lease", daemon=True)
        self._client = client
        self.feed = feed
        self.owner = owner
        self._ttl_ms = int(ttl_s * 1000)
        self._ttl_s = ttl_s
        self._every_s = ttl_s / RENEWALS_PER_TTL
        self._leadership = leadership
        self._clock = clock
        self._metrics = metrics
        self._ready = ready
        self._on_acquired = on_acquired
        self._parties = parties  # pipelines that settle their gaps at each takeover
        self._lease_key = keys.INGEST_LEASE.name(feed=feed)
        self._fence_key = keys.INGEST_FENCE.name(feed=feed)
        self._candidates_key = keys.INGEST_CANDIDATES.name(feed=feed)
        self._stop_event = threading.Event()
        self._valid_until = 0.0  # monotonic: publishing is safe until then
        self._free_since: float | None = None
        self.others_ready = False  # another ingester of the feed is ready to take over
        self.reachable = False
        self.failure: BaseException | None = None
        self.holder: str | None = None

    # --- thread -------------------------------------------------------------------------
    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                self.cycle()
                self._stop_event.wait(self._every_s)
        except BaseException as exc:  # a bug here must stop the process, not just this thread
            self.failure = exc
            log.exception("lease thread failed")

    def stop(self, release: bool, timeout_s: float = 3.0) -> None:
        """Stop the thread; ``release`` gives the lease up at once (after the final journal
        write) so a standby takes over now instead of after the TTL."""
        self._stop_event.set()
        join_in_slices(self, timeout_s)
        with contextlib.suppress(redis.RedisError, OSError):
            self._client.hdel(self._candidates_key, self.owner)  # no longer a candidate
        if release and self._leadership.fence is not None:
            fence = self._leadership.fence
            self._leadership.lost()
            try:
                self._client.eval(_RELEASE, 1, self._lease_key, fence)
                log.info("lease released for the next leader")
            except (redis.RedisError, OSError) as exc:
                log.warning("could not release the lease (it expires by itself): %s", exc)
        self._set_gauge()

    # --- one cycle ----------------------------------------------------------------------
    def cycle(self) -> None:
        started = self._clock.monotonic()
        try:
            if self._leadership.fence is not None:
                self._renew(started)
            else:
                self._try_acquire(started)
            self._advertise()
            self.reachable = True
        except (redis.RedisError, OSError) as exc:
            if self.reachable:
                log.warning("lease redis unreachable, will retry: %s", exc)
            self.reachable = False
            self._leadership.other_leads = False
            if self._leadership.fence is not None and self._clock.monotonic() > self._valid_until:
                self._lose("unrenewed", "could not renew the lease before it may have expired")
        self._set_gauge()

    def _renew(self, started: float) -> None:
        fence = self._leadership.fence
        assert fence is not None
        if self._client.eval(_RENEW, 1, self._lease_key, fence, self._ttl_ms):
            self._valid_until = started + self._ttl_s * SELF_EXPIRY_SHARE
            return
        if self._client.exists(self._lease_key):
            self._lose("taken", "the lease passed to another ingester")
        else:  # expired while Redis was slow, or Redis restarted: take it again next cycle
            self._lose("expired", "the lease expired before it was renewed")

    def _try_acquire(self, started: float) -> None:
        holder = self._client.get(self._lease_key)
        self.holder = holder.decode() if isinstance(holder, bytes) else holder
        self._leadership.other_leads = holder is not None
        if holder is not None:
            self._free_since = None
            return
        if self._free_since is None:
            self._free_since = started
        # A ready ingester takes a free lease at once; one whose socket is down gives the
        # ready ones a TTL to do so first.
        if not self._ready() and started - self._free_since < self._ttl_s:
            return
        token = self._client.eval(
            _ACQUIRE, 2, self._lease_key, self._fence_key, self.owner, self._ttl_ms
        )
        if token is None:
            return
        fence = f"{int(token)}:{self.owner}"
        self._valid_until = started + self._ttl_s * SELF_EXPIRY_SHARE
        self._free_since = None
        self.holder = fence
        try:
            previous = read_journal(self._client, self.feed)
        except (redis.RedisError, OSError):
            self._client.eval(_RELEASE, 1, self._lease_key, fence)  # try again next cycle
            raise
        self._leadership.acquired(fence, self._parties)
        self._metrics.counter(TAKEOVERS).inc()
        log.warning("took the lease of feed %s (token %s)", self.feed, int(token))
        self._on_acquired(previous)

    def _lose(self, reason: str, why: str) -> None:
        self._leadership.lost()
        self._metrics.counter(LEASE_LOST).labels(reason).inc()
        log.error("standing by: %s; what was not yet published is held", why)

    def _advertise(self) -> None:
        """Tell the feed's other ingesters how this one stands; learn how they do."""
        now_ms = self._clock.time_ms()
        me = orjson.dumps(
            {"ms": now_ms, "ready": bool(self._ready()), "leading": self._leadership.leading}
        )
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(self._candidates_key, self.owner, me)
        pipe.expire(self._candidates_key, CANDIDATES_TTL_S)
        pipe.hgetall(self._candidates_key)
        _, _, everyone = pipe.execute()
        fresh_ms = self._ttl_ms  # six advertisements per TTL: one missed is not "gone"
        ready, stale = False, []
        for owner, doc in everyone.items():
            name = owner.decode() if isinstance(owner, bytes) else owner
            if name == self.owner:
                continue
            info = _candidate(doc)
            if info is None or now_ms - int(info.get("ms", 0)) > CANDIDATES_TTL_S * 1000:
                stale.append(name)
            elif now_ms - int(info.get("ms", 0)) <= fresh_ms and info.get("ready"):
                ready = True
        self.others_ready = ready
        if stale and self._leadership.leading:
            self._client.hdel(self._candidates_key, *stale)

    def _set_gauge(self) -> None:
        self._metrics.gauge(LEADER).set(1 if self._leadership.leading else 0)


def _candidate(doc: Any) -> dict[str, Any] | None:
    try:
        info = orjson.loads(doc)
    except orjson.JSONDecodeError:
        return None
    return info if isinstance(info, dict) else None
