"""Event → webhook latency of alerts, end to end, at 2,000 events/s.

Real pieces only: a private redis-server (broker + shared market state), a fresh PostgreSQL
database, ``celery -A tasks worker`` processes (one on ``alerts``, one on ``notify``) and a
threaded HTTP receiver on 127.0.0.1 that records when each signed webhook arrives.

Market: ``--coins`` coins whose mids ramp up steadily; ``--rate`` mid events per second in
total, stamped with the time they are generated (as the ingester stamps receive time) and
sent as one ``hyperwatch.alerts.evaluate`` mids batch every ``--batch-ms`` (the ingester's
window for mids, ``INGEST_ALERT_BATCH_MS``, default 50; it was ``INGEST_BATCH_MS``'s 100
before), exactly the task and payload the ingester sends.
Alerts: per coin ``--firing`` once-alerts whose thresholds the ramp crosses one after the
other during the run, plus ``--noise`` per coin that never fire (thresholds far above and
below), so the index is not trivially small.

Latency of a notification = its arrival at the receiver - the time of the *first* event
whose price reached the alert's threshold (known from the ramp), so the ingest batching
delay is included. Also checked: every firing alert delivered exactly once (0 lost),
no idempotency key twice (0 duplicates), no outbox row left pending or failed.

    .venv/bin/python bench/bench_alert_latency.py
    .venv/bin/python bench/bench_alert_latency.py --rate 2000 --seconds 20 --batch-ms 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
from sqlalchemy import insert, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domain.alerts.book import announce  # noqa: E402
from events import Mid, encode_batch  # noqa: E402
from models import migrate  # noqa: E402
from models.alert import Alert  # noqa: E402
from models.db import get_database  # noqa: E402
from models.notification import Notification  # noqa: E402
from models.repositories import ChannelRepository, UserRepository  # noqa: E402
from settings import load_settings  # noqa: E402
from tasks.application import create_app  # noqa: E402
from tests.support.services import PostgresDatabase, RedisServer  # noqa: E402

CELERY = str(ROOT / ".venv" / "bin" / "celery")
SECRET = "bench-secret"  # noqa: S105 - a throwaway receiver
BASE_PX = Decimal(1000)


@dataclass(frozen=True)
class Arrival:
    at: float
    key: str
    alert_id: int
    fired_at: float  # when the evaluating worker judged it (payload ``fired_at``), seconds


class Receiver:
    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        lock = threading.Lock()
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                key = self.headers.get("Idempotency-Key", "")
                document = json.loads(body)
                with lock:
                    arrivals.append(
                        Arrival(at, key, int(document["alert_id"]), document["fired_at"] / 1000)
                    )
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


class Ramp:
    """Each coin's mid rises linearly by ``rise`` over ``seconds`` from ``start``."""

    def __init__(self, start: float, seconds: float, rise: Decimal) -> None:
        self.start, self.seconds, self.rise = start, seconds, rise

    def price(self, t: float) -> Decimal:
        progress = Decimal(str(round(max(0.0, t - self.start) / self.seconds, 6)))
        return (BASE_PX + self.rise * progress).quantize(Decimal("0.001"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=2000, help="mid events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch-ms", type=int, default=50)
    parser.add_argument("--coins", type=int, default=20)
    parser.add_argument("--firing", type=int, default=40, help="firing alerts per coin")
    parser.add_argument("--noise", type=int, default=2500, help="never-firing alerts per coin")
    parser.add_argument("--alert-workers", type=int, default=1, help="processes on 'alerts'")
    parser.add_argument("--notify-threads", type=int, default=8)
    parser.add_argument(
        "--waves", action="store_true", help="same thresholds on every coin: bursts of firings"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="hw-bench-alerts-"))
    redis_server = RedisServer().start()
    pg = PostgresDatabase()
    receiver = Receiver()
    env_settings = {
        "DATABASE_URL": pg.url,
        "REDIS_URL": redis_server.url,
        "BROKER_URL": redis_server.url,
        "WEBHOOK_ALLOWLIST": "127.0.0.0/8",
        "TIER_ENTERPRISE_MAX_ALERTS": "10000000",
        "TIER_ENTERPRISE_NOTIFICATIONS_PER_HOUR": "10000000",
        "WORKER_METRICS_PORT": "0",
        "DATA_DIR": str(workdir / "var"),
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env_settings)
    settings = load_settings()
    migrate.upgrade(settings)
    db = get_database(settings)
    coins = [f"C{i:02d}" for i in range(args.coins)]
    rise = Decimal(100)
    step = rise / (args.firing + 1)
    with db.session() as s:
        user = UserRepository(s).create("bench@example.com", "enterprise")
        channel = ChannelRepository(s).create(
            user.id, "webhook", f"http://127.0.0.1:{receiver.port}/hook", SECRET
        )
        rows = []
        for i, coin in enumerate(coins):
            # staggered per coin, so firings spread over the run instead of coming in waves
            offset = 0 if args.waves else step * i / len(coins)
            for k in range(1, args.firing + 1):
                rows.append(
                    {
                        "coin": coin,
                        "kind": "price_above",
                        "threshold": (BASE_PX + step * k - offset).quantize(Decimal("0.001")),
                    }
                )
            for k in range(args.noise):
                far = BASE_PX * (3 + k) if k % 2 else BASE_PX / (3 + k)
                rows.append(
                    {
                        "coin": coin,
                        "kind": "price_above" if k % 2 else "price_below",
                        "threshold": far.quantize(Decimal("0.000001")),
                    }
                )
        s.execute(
            insert(Alert),
            [{**r, "user_id": user.id, "channel_id": channel.id, "price_source": "mid", "mode": "once",
              "cooldown_s": 0, "rearm_margin": Decimal("0.005"), "armed": True, "active": True} for r in rows],
        )  # fmt: skip
        user_id = user.id
    firing = {
        alert_id: Decimal(threshold)
        for alert_id, threshold in db.engine.connect().execute(
            text("SELECT id, threshold FROM alerts WHERE threshold > :lo AND threshold <= :hi"),
            {"lo": BASE_PX, "hi": BASE_PX + rise},
        )
    }
    client = redis.Redis.from_url(redis_server.url)
    announce(client, [1])
    total_alerts = len(rows)

    env = {k: v for k, v in os.environ.items()}
    env.update(env_settings)
    env["PYTHONPATH"] = str(ROOT)
    env["REMAP_SIGTERM"] = "SIGQUIT"
    procs = []

    def worker(name: str, queue: str, *pool: str) -> subprocess.Popen[bytes]:
        with (workdir / f"{name}.log").open("wb") as log:  # the child keeps its own handle
            return subprocess.Popen(
                [CELERY, "-A", "tasks", "worker", "-n", f"{name}@%h", "-Q", queue, *pool,
                 "--without-mingle", "--without-gossip", "--loglevel=WARNING"],
                cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    for i in range(args.alert_workers):
        procs.append(worker(f"alerts{i}", "alerts", "-P", "solo"))
    procs.append(worker("notify", "notify", "-P", "threads", "-c", str(args.notify_threads)))
    app = create_app(settings)
    try:
        # Warm-up: every alert worker loads its book (one full load) before the clock runs.
        t_warm = time.time()
        for _ in range(args.alert_workers * 4):
            warm = [Mid(coin=c, time=int(t_warm * 1000), px=BASE_PX) for c in coins]
            app.send_task("hyperwatch.alerts.evaluate", args=[encode_batch("mids", warm)])
        deadline = time.time() + 120
        while client.llen("alerts") or client.hlen("unacked"):
            if time.time() > deadline:
                raise SystemExit("workers did not start; see " + str(workdir))
            time.sleep(0.2)

        ramp = Ramp(time.time() + 0.5, args.seconds, rise)
        per_batch = max(1, round(args.rate * args.batch_ms / 1000))
        next_flush = ramp.start
        sent_events = 0
        last_t = ramp.start
        end = ramp.start + args.seconds + 0.3
        while True:
            now = time.time()
            if now < next_flush:
                time.sleep(next_flush - now)
                continue
            if now > end:
                break
            # the events "received" since the last flush, evenly spread over that interval
            events = []
            for j in range(per_batch):
                t = last_t + (now - last_t) * (j + 1) / per_batch
                coin = coins[(sent_events + j) % len(coins)]
                events.append(Mid(coin=coin, time=int(t * 1000), px=ramp.price(t)))
            sent_events += per_batch
            last_t = now
            app.send_task("hyperwatch.alerts.evaluate", args=[encode_batch("mids", events)])
            next_flush += args.batch_ms / 1000
        elapsed = last_t - ramp.start

        # settle: every firing alert delivered or a deadline
        deadline = time.time() + 60
        while time.time() < deadline:
            with db.session() as s:
                open_rows = s.scalar(
                    text("SELECT count(*) FROM notifications WHERE status = 'pending'")
                )
            if len({a.alert_id for a in receiver.arrivals}) >= len(firing) and not open_rows:
                break
            time.sleep(0.5)
        time.sleep(1.0)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        app.close()

    with db.session() as s:
        statuses: dict[str, int] = dict(
            s.execute(
                select(Notification.status, text("count(*)")).group_by(Notification.status)
            ).all()
        )
    keys = [a.key for a in receiver.arrivals]
    duplicates = len(keys) - len(set(keys))
    delivered = {a.alert_id for a in receiver.arrivals}
    lost = len(set(firing) - delivered)
    unexpected = len(delivered - set(firing))
    latencies, judged, delivering = [], [], []
    for arrival in receiver.arrivals:
        threshold = firing.get(arrival.alert_id)
        if threshold is None:
            continue
        # first moment the ramp reached the threshold, at the events' millisecond resolution
        crossing = ramp.start + float((threshold - BASE_PX) / rise) * args.seconds
        latencies.append((arrival.at - crossing) * 1000)
        judged.append((arrival.fired_at - crossing) * 1000)
        delivering.append((arrival.at - arrival.fired_at) * 1000)
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"offered {sent_events} mid events in {elapsed:.1f} s = {sent_events / elapsed:.0f} events/s, "
          f"batches every {args.batch_ms} ms ({per_batch} events), {len(coins)} coins")  # fmt: skip
    print(f"alerts: {total_alerts} active ({len(firing)} firing once during the run), "
          f"{args.alert_workers} alert worker(s) (solo), notify worker threads={args.notify_threads}")  # fmt: skip
    print(f"notifications: {len(receiver.arrivals)} received, outbox {statuses}, user {user_id}")
    if latencies:
        print(f"event -> webhook latency ms: p50 {statistics.median(latencies):.1f}  "
              f"p90 {percentile(latencies, 90):.1f}  p99 {percentile(latencies, 99):.1f}  "
              f"max {max(latencies):.1f}  (n={len(latencies)})")  # fmt: skip
        for name, part in (
            ("  event -> judged (batching, alerts queue, evaluation)", judged),
            ("  judged -> webhook (commit, notify queue, delivery)", delivering),
        ):
            print(f"{name}: p50 {statistics.median(part):.1f}  p99 {percentile(part, 99):.1f}")
    print(f"duplicates: {duplicates}  lost: {lost}  unexpected: {unexpected}")
    client.close()
    redis_server.close()
    db.dispose()
    pg.close()
    ok = latencies and percentile(latencies, 99) <= 250 and duplicates == 0 and lost == 0
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
