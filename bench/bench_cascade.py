"""A cascade through the alert pipeline: event -> delivery, the digest ratio, 0 lost, 0 doubled.

Real pieces only, as in ``bench_alert_latency.py``: a private redis-server, a fresh
PostgreSQL database, ``celery -A tasks worker`` processes (one on ``alerts``, one on
``notify``), and a threaded HTTP receiver on 127.0.0.1 for the subscribers' webhooks.

The market is the simulator's cascade mode in process (``workers.simulator.cascade``:
``Market`` + ``CascadeBlocks``): the trade rate ramps from ``--rate`` to ``--peak`` over
``--ramp`` seconds, holds ``--hold`` seconds and ramps back, while every coin's price falls
by ``--move`` percent. Every ``--batch-ms`` the coins' mids (what ``allMids`` carries) go to
``hyperwatch.alerts.evaluate`` as the ingester sends them.

Subscribers: ``--subscribers`` users, each with a webhook channel grouped with
``--group-interval`` seconds (``NOTIFY_GROUP_INTERVAL_S``; group_wait 0) and
``--alerts-per`` ``price_below`` alerts on the coins, their thresholds spread over the band
the cascade falls through, so most fire during it.

Reported: per firing, event (the first mid at or below its threshold) -> its arrival at the
receiver, alone or inside a digest; per message, its newest firing -> arrival; messages
sent vs firings (the digest ratio); firings still pending in the outbox when the bench
stops (behind, not lost); lost (crossed, and neither delivered nor pending by the end of
the settling time, during which fresh mids keep coming at the level reached); duplicated
(a firing delivered twice). The load average is printed beside the figures.

    .venv/bin/python bench/bench_cascade.py --subscribers 1000 --peak 5000 --hold 20
    .venv/bin/python bench/bench_cascade.py          # the issue's scale: 10,000 x 10, 25,000/s
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import redis
from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domain.alerts.book import announce  # noqa: E402
from events import Mid, encode_batch  # noqa: E402
from models import migrate  # noqa: E402
from models.alert import Alert  # noqa: E402
from models.db import get_database  # noqa: E402
from models.notification_channel import NotificationChannel  # noqa: E402
from models.user import User  # noqa: E402
from settings import load_settings  # noqa: E402
from tasks.application import create_app  # noqa: E402
from tests.support.services import PostgresDatabase, RedisServer  # noqa: E402
from workers.simulator.cascade import Cascade, CascadeBlocks  # noqa: E402
from workers.simulator.market import Market  # noqa: E402
from workers.simulator.universe import Universe  # noqa: E402

CELERY = str(ROOT / ".venv" / "bin" / "celery")
SECRET = "bench-secret-0123456789"  # noqa: S105 - a throwaway receiver
COINS = ["BTC", "ETH", "SOL", "DOGE", "AVAX", "LINK", "ARB", "OP", "SUI", "APT"]


@dataclass(frozen=True)
class Delivery:
    at: float
    message_key: str
    items: list[tuple[int, str]]  # (alert id, member idempotency key)
    channel: str = ""  # the webhook's path: one per subscriber channel


class Receiver:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        lock = threading.Lock()
        out = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                doc = json.loads(body)
                key = self.headers.get("Idempotency-Key", "")
                if doc.get("kind") == "digest":
                    items = [(int(i["alert_id"]), str(i["idempotency_key"])) for i in doc["items"]]
                elif "alert_id" in doc:
                    items = [(int(doc["alert_id"]), key)]
                else:
                    items = []  # a hold notice
                with lock:
                    out.append(Delivery(at, key, items, self.path))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def lateness(
    deliveries: list[Delivery], crossing: dict[int, float], interval_s: float
) -> list[float]:
    """Per message, ms from when the grouping rules make it due to its arrival: the
    pipeline's own delay, the by-design wait of a digest taken out. A channel's message is
    due when its earliest firing crossed — group_wait is 0 —, or, after an earlier message,
    not before that one plus the group interval (what arrives within it waits for the
    digest). The earlier message's arrival stands for the moment its window began (a few
    ms after it), so this errs a little towards less lateness."""
    by_channel: dict[str, list[Delivery]] = {}
    for d in deliveries:
        if d.items:
            by_channel.setdefault(d.channel, []).append(d)
    out: list[float] = []
    for messages in by_channel.values():
        previous: float | None = None
        for d in sorted(messages, key=lambda m: m.at):
            crossed = [crossing[a] for a, _ in d.items if a in crossing]
            if crossed:
                due = min(crossed)
                if previous is not None:
                    due = max(due, previous + interval_s)
                out.append((d.at - due) * 1000)
            previous = d.at
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--alerts-per", type=int, default=10)
    parser.add_argument("--coins", type=int, default=10)
    parser.add_argument("--rate", type=float, default=2_000.0, help="trades/s before and after")
    parser.add_argument("--peak", type=float, default=25_000.0, help="trades/s at the peak")
    parser.add_argument("--ramp", type=float, default=20.0)
    parser.add_argument("--hold", type=float, default=60.0)
    parser.add_argument("--move", type=float, default=-10.0, help="percent every price moves")
    parser.add_argument("--batch-ms", type=int, default=100)
    parser.add_argument("--group-interval", type=int, default=10)
    parser.add_argument("--notify-threads", type=int, default=16)
    parser.add_argument(
        "--notify-processes", type=int, default=1, help="notify worker processes (each threaded)"
    )
    parser.add_argument("--settle", type=float, default=120.0)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="hw-bench-cascade-"))
    redis_server = RedisServer().start()
    pg = PostgresDatabase()
    receiver = Receiver()
    env_settings = {
        "DATABASE_URL": pg.url, "REDIS_URL": redis_server.url, "BROKER_URL": redis_server.url,
        "WEBHOOK_ALLOWLIST": "127.0.0.0/8", "TIER_PRO_MAX_ALERTS": "1000000",
        "TIER_PRO_NOTIFICATIONS_PER_HOUR": "1000000", "WORKER_METRICS_PORT": "0",
        "NOTIFY_GROUP_INTERVAL_S": str(args.group_interval), "DATA_DIR": str(workdir / "var"),
        "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    os.environ.update(env_settings)
    settings = load_settings()
    migrate.upgrade(settings)
    db = get_database(settings)
    coins = COINS[: args.coins]
    universe = Universe.build(coins, [])
    cascade = Cascade(at_s=2.0, ramp_s=args.ramp, hold_s=args.hold, peak_rate=args.peak,
                      move_pct=args.move)  # fmt: skip
    market = Market(universe, seed=14, trades_per_block=1)
    base = {c: market.mid(c) or Decimal(1) for c in coins}
    rng = random.Random(14)
    thresholds: dict[int, tuple[str, Decimal]] = {}
    with db.session() as s:
        s.execute(insert(User), [{"id": u + 1, "email": f"u{u}@bench", "tier": "pro", "active": True}
                                  for u in range(args.subscribers)])  # fmt: skip
        s.execute(insert(NotificationChannel), [
            {"id": u + 1, "user_id": u + 1, "kind": "webhook", "active": True, "name": "",
             "target": f"http://127.0.0.1:{receiver.port}/u{u}", "secret": SECRET}
            for u in range(args.subscribers)])  # fmt: skip
        rows: list[dict[str, object]] = []
        band = abs(args.move) / 100 * 0.9  # inside what the fall reaches
        for u in range(args.subscribers):
            for k in range(args.alerts_per):
                coin = coins[(u + k) % len(coins)]
                level = base[coin] * Decimal(str(round(1 - band * rng.random(), 6)))
                thresholds[len(rows) + 1] = (coin, level.quantize(Decimal("0.0001")))
                rows.append({"id": len(rows) + 1, "user_id": u + 1, "channel_id": u + 1,
                             "coin": coin, "kind": "price_below", "threshold": thresholds[len(rows) + 1][1],
                             "price_source": "mid", "mode": "once", "cooldown_s": 0,
                             "rearm_margin": Decimal("0.005"), "armed": True, "active": True})  # fmt: skip
        for k in range(0, len(rows), 20_000):
            s.execute(insert(Alert), rows[k : k + 20_000])
        for table in ("users", "notification_channels", "alerts"):
            s.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 10000000)"))
    client = redis.Redis.from_url(redis_server.url)
    announce(client, [1])
    by_coin: dict[str, list[tuple[Decimal, int]]] = {c: [] for c in coins}
    for alert_id, (coin, level) in thresholds.items():
        by_coin[coin].append((level, alert_id))
    for ladder in by_coin.values():
        ladder.sort(reverse=True)  # highest first: crossed first as prices fall

    env = dict(os.environ) | env_settings | {"PYTHONPATH": str(ROOT), "REMAP_SIGTERM": "SIGQUIT"}
    procs = []
    notify_pool = ["-P", "threads", "-c", str(args.notify_threads)]
    workers = [("alerts", "alerts", ["-P", "solo"])]
    workers += [(f"notify{k}", "notify", notify_pool) for k in range(args.notify_processes)]
    for name, queue, pool in workers:
        with (workdir / f"{name}.log").open("wb") as log:
            procs.append(subprocess.Popen(
                [CELERY, "-A", "tasks", "worker", "-n", f"{name}@%h", "-Q", queue, *pool,
                 "--without-mingle", "--without-gossip", "--loglevel=WARNING"],
                cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
    app = create_app(settings)
    crossing: dict[int, float] = {}
    firsts = {c: 0 for c in coins}
    try:
        warm_t = int(time.time() * 1000)
        app.send_task("hyperwatch.alerts.evaluate",
                      args=[encode_batch("mids", [Mid(c, warm_t, base[c] * 2) for c in coins])])  # fmt: skip
        deadline = time.time() + 180
        while client.llen("alerts") or client.hlen("unacked"):
            if time.time() > deadline:
                raise SystemExit(f"workers did not start; see {workdir}")
            time.sleep(0.2)
        start = time.time()
        blocks = CascadeBlocks(market, args.batch_ms, int(start * 1000), cascade, args.rate)
        total_s = cascade.at_s + 2 * args.ramp + args.hold + 2.0
        trades = 0
        loads = []
        while (elapsed := time.time() - start) < total_s:
            for block in blocks.due(elapsed * 1000, 1_000):
                trades += len(block.trades)
                t = block.time
                mids = [Mid(c, t, market.mid(c) or base[c]) for c in coins]
                app.send_task("hyperwatch.alerts.evaluate", args=[encode_batch("mids", mids)])
                for mid in mids:
                    ladder, i = by_coin[mid.coin], firsts[mid.coin]
                    while i < len(ladder) and ladder[i][0] >= mid.px:
                        crossing[ladder[i][1]] = t / 1000
                        i += 1
                    firsts[mid.coin] = i
            loads.append(os.getloadavg()[0])
            time.sleep(max(0.0, (blocks.next_due_ms() or 0) / 1000 - (time.time() - start)))
        fed_s = time.time() - start
        # The market goes on after the cascade: mids keep coming (at the level it reached),
        # so an alert held while its worker was behind (its batches older than
        # ALERT_HOLD_MIDS_S when judged) fires on the first fresh data.
        deadline = time.time() + args.settle
        next_check = 0.0
        while time.time() < deadline:
            t = int(time.time() * 1000)
            mids = [Mid(c, t, market.mid(c) or base[c]) for c in coins]
            if client.llen("alerts") < 10:
                app.send_task("hyperwatch.alerts.evaluate", args=[encode_batch("mids", mids)])
            if time.time() >= next_check:
                next_check = time.time() + 2.0
                with db.session() as s:
                    armed = s.scalar(text("SELECT count(*) FROM alerts WHERE active AND armed"))
                    pending = s.scalar(
                        text("SELECT count(*) FROM notifications WHERE status = 'pending'")
                    )
                if not armed and not pending and not client.llen("notify"):
                    break
            time.sleep(args.batch_ms / 1000)
        settled_s = time.time() - start - fed_s
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        app.close()

    with db.session() as s:
        statuses: dict[str, int] = dict(s.execute(text("SELECT status, count(*) FROM notifications GROUP BY status")).all())  # fmt: skip
        fired = s.scalar(text("SELECT count(*) FROM alerts WHERE last_fired_at IS NOT NULL")) or 0
        # Still in the outbox when the bench stopped: behind, not lost (the workers and the
        # sweeper deliver them; nothing removes a pending row).
        waiting = set(
            s.scalars(
                text(
                    "SELECT alert_id FROM notifications "
                    "WHERE status = 'pending' AND alert_id IS NOT NULL"
                )
            )
        )
        # When each firing's outbox row was written: splits the latency into evaluation
        # (event -> row) and delivery (row -> receiver).
        written: dict[int, float] = {
            int(a): float(t)
            for a, t in s.execute(
                text(
                    "SELECT alert_id, min(extract(epoch FROM created_at)) FROM notifications "
                    "WHERE alert_id IS NOT NULL GROUP BY alert_id"
                )
            ).all()
        }
    member_keys = [key for d in receiver.deliveries for _, key in d.items]
    duplicates = len(member_keys) - len(set(member_keys))
    arrived: dict[int, float] = {}
    per_message: list[float] = []
    for d in receiver.deliveries:
        times = [crossing[a] for a, _ in d.items if a in crossing]
        for alert_id, _ in d.items:
            arrived.setdefault(alert_id, d.at)
        if times:
            per_message.append((d.at - max(times)) * 1000)
    latencies = [(arrived[a] - crossing[a]) * 1000 for a in arrived if a in crossing]
    lost = len(set(crossing) - set(arrived) - waiting)
    messages = sum(1 for d in receiver.deliveries if d.items)
    digests = sum(1 for d in receiver.deliveries if len(d.items) > 1)
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"cascade: {trades} trades in {fed_s:.0f} s (rate {args.rate:.0f} -> {args.peak:.0f}/s, "
          f"ramp {args.ramp:.0f} s, hold {args.hold:.0f} s, move {args.move:+.0f} %), {len(coins)} coins; "
          f"load average during the run: median {statistics.median(loads):.2f}, max {max(loads):.2f}")  # fmt: skip
    print(f"subscribers {args.subscribers}, alerts {len(thresholds)}, group_interval {args.group_interval} s; "
          f"crossed {len(crossing)}, fired {fired}; outbox {statuses}")  # fmt: skip
    print(f"messages {messages} for {len(arrived)} delivered firings (digest ratio "
          f"{messages / max(1, len(arrived)):.3f}; {digests} digests)")  # fmt: skip
    if latencies:
        print(f"event -> delivery per firing ms: p50 {statistics.median(latencies):.0f}  "
              f"p99 {percentile(latencies, 99):.0f}  max {max(latencies):.0f}")  # fmt: skip
        judged = [
            (written[a] - crossing[a]) * 1000 for a in arrived if a in crossing and a in written
        ]
        sending = [(arrived[a] - written[a]) * 1000 for a in arrived if a in written]
        if judged:
            print(f"  event -> outbox row (evaluation) ms: p50 {statistics.median(judged):.0f}  "
                  f"p99 {percentile(judged, 99):.0f}; outbox row -> delivery ms: p50 "
                  f"{statistics.median(sending):.0f}  p99 {percentile(sending, 99):.0f}")  # fmt: skip
        print(f"newest firing -> message ms: p50 {statistics.median(per_message):.0f}  "
              f"p99 {percentile(per_message, 99):.0f}")  # fmt: skip
        late = lateness(receiver.deliveries, crossing, args.group_interval)
        if late:
            print(f"message lateness (arrival - when grouping makes it due) ms: p50 "
                  f"{statistics.median(late):.0f}  p99 {percentile(late, 99):.0f}  "
                  f"max {max(late):.0f}")  # fmt: skip
    print(f"settled {settled_s:.0f} s after the cascade (fresh mids meanwhile)")
    print(f"still pending in the outbox when stopped: {len(waiting)}  lost: {lost}  "
          f"duplicated: {duplicates}")  # fmt: skip
    client.close()
    redis_server.close()
    db.dispose()
    pg.close()


if __name__ == "__main__":
    main()
