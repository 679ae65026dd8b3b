"""Subscriber API throughput and latency: ``GET /v1/alerts`` and ``POST /v1/alerts`` against
a real ``hyperwatch api --workers 2`` on PostgreSQL and Redis.

A private redis-server and a fresh PostgreSQL database; one enterprise subscriber (limits
raised so the rate limit never answers) whose channel holds ``--alerts`` alerts before the
reads. For each operation and run, ``--clients`` threads (one keep-alive HTTP connection
each) send requests for ``--seconds``; the report gives requests/s and the p50 / p99
latency per run and their medians across runs, with the load average: the clients share
the machine's cores with the server, so the figures are a floor and, on a busy machine,
to be retaken on a quiet one.

    .venv/bin/python bench/bench_api.py [--seconds 10] [--runs 3] [--clients 8] [--alerts 50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from models import migrate
from settings import load_settings
from tests.support.api import ApiClient, ApiProcess
from tests.support.services import PostgresDatabase, RedisServer

Request = Callable[[httpx.Client], httpx.Response]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(url: str, request: Request, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[int] = [0] * clients
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < stop:
                started = time.perf_counter()
                response = request(http)
                latencies[index].append(time.perf_counter() - started)
                if response.status_code >= 300:
                    failures[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    every = [v for per in latencies for v in per]
    return {
        "requests_per_s": len(every) / elapsed,
        "p50_ms": percentile(every, 0.5) * 1000,
        "p99_ms": percentile(every, 0.99) * 1000,
        "failures": float(sum(failures)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--alerts", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    redis_server = RedisServer().start()
    pg = PostgresDatabase()
    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    migrate.upgrade(load_settings(database_url=pg.url, data_dir=workdir / "var"))
    process = ApiProcess(
        workdir, workers=args.workers, database_url=pg.url, redis_url=redis_server.url,
        tier_enterprise_api_requests_per_minute=100_000_000, tier_enterprise_max_alerts=10_000_000,
        log_level="WARNING",
    ).wait_ready()  # fmt: skip
    try:
        import redis

        redis.Redis.from_url(redis_server.url).hset("hw:latest:mid", "BTC", '{"px": "1"}')
        api = ApiClient(process.url)
        eve = api.subscriber("eve@example.com", tier="enterprise")
        channel = api.as_(eve, "POST", "/v1/channels", json={"kind": "redis"}).json()["id"]
        body = {
            "kind": "price_above",
            "coin": "BTC",
            "threshold": "100000.5",
            "channel_id": channel,
        }
        for _ in range(args.alerts):
            assert api.as_(eve, "POST", "/v1/alerts", json=body).status_code == 201
        auth = eve.auth
        operations: dict[str, Request] = {
            "GET /v1/alerts": lambda http: http.get("/v1/alerts", headers=auth),
            "POST /v1/alerts": lambda http: http.post("/v1/alerts", json=body, headers=auth),
        }
        report: dict[str, object] = {
            "machine": f"{platform.machine()} cpus={os.cpu_count()}",
            "api_workers": args.workers,
            "clients": args.clients,
            "seconds": args.seconds,
            "alerts_listed": min(args.alerts, 50),
        }
        for name, request in operations.items():
            runs = []
            for _ in range(args.runs):
                load = os.getloadavg()[0]
                runs.append({**measure(process.url, request, args.clients, args.seconds),
                             "load_before": load})  # fmt: skip
            report[name] = {
                "runs": runs,
                "median_requests_per_s": statistics.median(r["requests_per_s"] for r in runs),
                "median_p50_ms": statistics.median(r["p50_ms"] for r in runs),
                "median_p99_ms": statistics.median(r["p99_ms"] for r in runs),
            }
        report["load_after"] = os.getloadavg()[0]
        print(json.dumps(report, indent=2))
        api.close()
    finally:
        process.stop()
        pg.close()
        redis_server.close()


if __name__ == "__main__":
    main()
