"""Security checks against the real system.

- **Secrets stay secret**: ``hyperwatch up --feed sim`` runs every process (simulator,
  ingester, worker, beat, Flower, the supervisor) with secret-bearing settings — a database
  password, a Redis password, Flower credentials, a Sentry DSN — while subscribers' webhook
  secret, Slack URL and Telegram bot token are used for real deliveries (one failing, so
  error paths log too) and a task fails into Sentry. No secret may appear in any process's
  output, in any Sentry envelope, on any ``/metrics``, in Flower's authenticated pages, in
  the operator commands' output or in the outbox's ``last_error``. One exception is pinned
  exactly: at DEBUG, Celery's own dump of message headers shows the DSN's *public* key,
  which Sentry's trace propagation puts in every task message (see the test).
- **Flower** refuses every UI and API route without valid credentials (401); only
  ``/metrics`` and ``/healthcheck`` are open (extends tests/e2e/test_flower.py, here against
  the Flower ``hyperwatch up`` starts).
- **SSRF guard**: the address forms tests/unit/notify/test_egress.py does not cover, the
  pinned address honoured by the real HTTP delivery path under DNS rebinding, redirects
  never followed.
- **SQL is parameterised**: injection strings through every CLI argument and repository
  filter that reaches SQL, on PostgreSQL; plus a static check that no module builds SQL by
  string formatting except the audited identifier-only sites.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from domain.notify.channels.base import DeliveryContext, post_json
from domain.notify.egress import EgressRefused, resolve_target
from models.db import Database
from models.trade import TradeSnapshot
from runtime import lifecycle
from settings import load_settings
from tasks.application import create_app
from tests.integration.celery.support import REPO, wait_until
from tests.integration.notify.receiver import Receiver, Reply, receiving
from tests.support.sentry import SentryReceiver
from tests.support.services import RedisServer, free_port, wait_for_port
from workers.cli import cli

# --- secrets -------------------------------------------------------------------------------------

DB_PASSWORD = "pg-Secr3t-9f41c2"
REDIS_PASSWORD = "redis-Secr3t-77aa01"
FLOWER_PASSWORD = "flower-Secr3t-5b3e90"
SENTRY_KEY = "5e17e1f00dd5e3c2a9b8c7d6e5f4a3b2"
WEBHOOK_SECRET = "whsec-Secr3t-0c9d8e7f"
TELEGRAM_TOKEN = "7345123987:AAH-Secr3t-tok3n_xYz0987654321"
SLACK_PATH = "T01ABCDEF/B02GHIJKL/Secr3tSlackPath9z8y7x"
CHANNEL_KEY = Fernet.generate_key().decode()
SECRETS = {
    "channel key": CHANNEL_KEY,
    "database password": DB_PASSWORD,
    "redis password": REDIS_PASSWORD,
    "flower password": FLOWER_PASSWORD,
    "sentry key": SENTRY_KEY,
    "webhook secret": WEBHOOK_SECRET,
    "telegram token": TELEGRAM_TOKEN,
    "slack path": SLACK_PATH,
}


def leaks(where: str, content: str | bytes, skip: Sequence[str] = ()) -> list[str]:
    body = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    return [f"{name} in {where}" for name, s in SECRETS.items() if name not in skip and s in body]


class PasswordRedis(RedisServer):
    """The private redis-server of the tests, with ``requirepass``."""

    def __init__(self, password: str) -> None:
        super().__init__()
        self.password = password

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> PasswordRedis:
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.dir), "--maxmemory-policy", "noeviction",
            "--requirepass", self.password, "--loglevel", "warning",
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        return self


@pytest.fixture()
def sentry() -> Iterator[SentryReceiver]:
    receiver = SentryReceiver(SENTRY_KEY)
    yield receiver
    receiver.close()


@pytest.fixture()
def secret_redis() -> Iterator[PasswordRedis]:
    server = PasswordRedis(REDIS_PASSWORD).start()
    yield server
    server.close()


@pytest.fixture()
def hooks() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


def hyperwatch(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


# The developer's own settings must not leak into the run under test.
FOREIGN_SETTINGS = (
    "HL_", "DATABASE_", "BROKER_", "REDIS_", "COINS", "TRACKED_", "FLOWER_", "SENTRY_",
    "WEBHOOK_", "TELEGRAM_", "API_",
)  # fmt: skip
FLOWER_PROTECTED = (
    "/", "/workers", "/tasks", "/broker", "/worker/celery@x", "/task/abc",
    "/api/workers", "/api/tasks", "/api/task/info/abc", "/api/task/result/abc",
    "/api/queues/length", "/api/task/types",
)  # fmt: skip
FLOWER_PROTECTED_POST = (
    "/api/worker/shutdown/celery@x", "/api/worker/pool/restart/celery@x",
    "/api/task/revoke/abc", "/api/task/async-apply/hyperwatch.persist.trades",
)  # fmt: skip


@pytest.mark.e2e
@pytest.mark.heavy  # the whole system, 26 s: runs in make test-heavy
def test_given_secret_bearing_settings_when_the_whole_system_runs_then_no_secret_leaks_and_flower_demands_credentials(
    tmp_path: Path,
    postgres_url: str,
    pg_database: Database,
    secret_redis: PasswordRedis,
    sentry: SentryReceiver,
    hooks: Receiver,
) -> None:
    # Given every secret-bearing setting at once
    database_url = make_url(postgres_url).set(password=DB_PASSWORD).render_as_string(False)
    ports = {name: free_port() for name in ("flower", "ingester", "worker", "api")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_SETTINGS)}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=secret_redis.url,
        FLOWER_BASIC_AUTH=f"ops:{FLOWER_PASSWORD}",
        FLOWER_PORT=str(ports["flower"]),
        INGESTER_HEALTH_PORT=str(ports["ingester"]),
        WORKER_METRICS_PORT=str(ports["worker"]),
        API_PORT=str(ports["api"]),
        SENTRY_DSN=sentry.dsn,
        WEBHOOK_ALLOWLIST="127.0.0.0/8",
        TELEGRAM_API_BASE=hooks.url("/tg"),
        CHANNEL_SECRET_KEYS=CHANNEL_KEY,
        WORKER_SOFT_SHUTDOWN_TIMEOUT_S="3",
        LOG_LEVEL="DEBUG",
    )
    # A Telegram API that fails once, echoing the request path (token included) back
    telegram_path = f"/tg/bot{TELEGRAM_TOKEN}/sendMessage"
    hooks.by_path[telegram_path] = deque(
        [Reply(500, body=f"Internal error handling {telegram_path}".encode())]
    )
    log_path = tmp_path / "up.log"
    log = log_path.open("wb")
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "up", "--feed", "sim"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    outputs: dict[str, str | bytes] = {}
    try:
        # When it is up and ingesting
        def started() -> bool:
            assert supervisor.poll() is None, log_path.read_text()[-4000:]
            return "Ctrl-C to stop" in log_path.read_text()  # the summary: Flower started last

        wait_until(started, 60, interval=0.2, what="hyperwatch up started everything")
        cache = redis.Redis.from_url(secret_redis.url)
        wait_until(lambda: cache.hexists("hw:latest:mid", "BTC"), 30, what="BTC mids")

        # and a subscriber's alerts deliver through a webhook, Slack and Telegram
        def run(*args: str) -> Result:
            result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
            outputs[" ".join(args)[:60]] = result.output
            return result

        assert run("users", "add", "sec@example.com", "--tier", "pro").exit_code == 0
        channels = {
            "webhook": run("channels", "add", "--user", "sec@example.com", "--kind", "webhook",
                           "--target", hooks.url("/hook"), "--secret", WEBHOOK_SECRET),
            "slack": run("channels", "add", "--user", "sec@example.com", "--kind", "slack",
                         "--target", hooks.url(f"/services/{SLACK_PATH}")),
            "telegram": run("channels", "add", "--user", "sec@example.com", "--kind", "telegram",
                            "--target", "123456", "--secret", TELEGRAM_TOKEN),
        }  # fmt: skip
        for name, added in channels.items():
            assert added.exit_code == 0, (name, added.output)
            channel = added.output.split()[1]
            alert = run("alerts", "add", "--user", "sec@example.com", "--channel", channel,
                        "--coin", "BTC", "--kind", "price_above", "--threshold", "1")  # fmt: skip
            assert alert.exit_code == 0, alert.output
        wait_until(
            lambda: (
                len(hooks.received(telegram_path)) >= 2
                and hooks.received("/hook")
                and hooks.received(f"/services/{SLACK_PATH}")
            ),
            60,
            interval=0.2,
            what="all three deliveries (telegram retried once)",
        )
        assert (
            hooks.received("/hook")[0].headers.get("X-Hyperwatch-Signature", "").startswith("v1=")
        )

        # and a task fails into Sentry (a message with the wrong number of arguments)
        settings = load_settings(database_url=database_url, redis_url=secret_redis.url)
        publisher = create_app(settings)
        publisher.send_task("hyperwatch.persist.trades", args=[{"v": 1}, "unexpected"])
        wait_until(
            lambda: any(b"TypeError" in body for body in sentry.bodies),
            30,
            what="the task's error event at Sentry",
        )
        publisher.close()
        lifecycle.registry.reset()

        # Then /metrics of the ingester, the worker, Flower and the API hold no secret
        assert httpx.get(f"http://127.0.0.1:{ports['api']}/v1/me", timeout=10).status_code == 401
        for name in ("ingester", "worker", "flower", "api"):
            response = httpx.get(f"http://127.0.0.1:{ports[name]}/metrics", timeout=10)
            assert response.status_code == 200, name
            outputs[f"{name} /metrics"] = response.text
        assert "hyperwatch_ingest_frames_total" in outputs["ingester /metrics"]
        assert "hyperwatch_notifications_total" in outputs["worker /metrics"]
        assert "hyperwatch_api_requests_total" in outputs["api /metrics"]

        # And Flower refuses every UI and API route without credentials, or with wrong ones
        flower = f"http://127.0.0.1:{ports['flower']}"
        for path in FLOWER_PROTECTED:
            for auth in (None, ("ops", "wrong"), ("intruder", FLOWER_PASSWORD)):
                status = httpx.get(f"{flower}{path}", auth=auth, timeout=10).status_code
                assert status == 401, (path, auth, status)
        for path in FLOWER_PROTECTED_POST:
            assert httpx.post(f"{flower}{path}", timeout=10).status_code == 401, path
        assert httpx.get(f"{flower}/healthcheck", timeout=10).status_code == 200
        # and with them it answers — without showing a secret on any page
        for path in ("/api/workers?refresh=1", "/broker", "/workers", "/api/queues/length"):
            response = httpx.get(f"{flower}{path}", auth=("ops", FLOWER_PASSWORD), timeout=30)
            assert response.status_code == 200, (path, response.text[:500])
            outputs[f"flower {path}"] = response.text

        # And the operator commands print none either
        for args in (("config", "show"), ("config", "show", "--json"), ("health",),
                     ("up", "--feed", "sim", "--dry-run"), ("notifications", "list")):  # fmt: skip
            done = hyperwatch(env, tmp_path, *args)
            outputs[" ".join(args)] = done.stdout + done.stderr
        assert "sent" in outputs["notifications list"]

        # And the failed Telegram attempt was recorded without its token
        with pg_database.engine.connect() as conn:
            errors = [
                r[0] or "" for r in conn.execute(text("SELECT last_error FROM notifications"))
            ]
            outputs["notifications.last_error"] = "\n".join(errors)
            # and the database holds no channel credential in clear (CHANNEL_SECRET_KEYS)
            outputs["notification_channels rows"] = "\n".join(
                str(tuple(r)) for r in conn.execute(text("SELECT * FROM notification_channels"))
            )
        cache.close()
    finally:
        # When everything is stopped
        if supervisor.poll() is None:
            supervisor.send_signal(signal.SIGTERM)
            try:
                supervisor.wait(timeout=90)
            except subprocess.TimeoutExpired:
                supervisor.send_signal(signal.SIGINT)
                supervisor.wait(timeout=10)
        log.close()
    assert supervisor.returncode == 0, log_path.read_text()[-4000:]

    # Then no process printed a secret, from start to drain (every line, DEBUG included)
    combined = log_path.read_text(errors="replace")
    for name in ("migrate", "simulator", "worker", "beat", "flower", "ingester", "api", "up"):
        assert f"[{name}] " in combined, f"no output from {name}"
    assert "Sentry enabled" in combined and "notification" in combined
    # One known exception, pinned so that nothing else hides behind it: at DEBUG, Celery logs
    # each message's headers ("TaskPool: Apply"), and Sentry's trace propagation puts the
    # DSN's public key in every task message's baggage header. Sentry calls that key public
    # (it can only submit events); it appears nowhere else, and not at INFO (the default).
    debug_dumps = [
        line
        for line in combined.splitlines()
        if SENTRY_KEY in line
        and "DEBUG/MainProcess] TaskPool: Apply" in line
        and line.count(SENTRY_KEY) == line.count(f"sentry-public_key={SENTRY_KEY}")
    ]
    for line in debug_dumps:
        combined = combined.replace(line, "")
    found = leaks("the processes' output", combined)
    for where, content in outputs.items():
        found += leaks(where, content)
    # And no Sentry envelope carried one (the DSN's own key is how Sentry authenticates it)
    assert sentry.bodies, "no envelope reached the Sentry receiver"
    for index, body in enumerate(sentry.bodies):
        found += leaks(f"sentry envelope {index}", body, skip=("sentry key",))
    assert found == [], found


# --- SSRF guard: what tests/unit/notify/test_egress.py does not cover ----------------------------


class ScriptedDNS:
    """A resolver answering each lookup of a name from a script (the rebinding attacker)."""

    def __init__(self, script: dict[str, list[list[str]]]) -> None:
        self.script = {name: list(answers) for name, answers in script.items()}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        answers = self.script.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers.pop(0) if len(answers) > 1 else answers[0]


@pytest.mark.parametrize(
    ("host", "category"),
    [
        # the cloud metadata address, however the OS would read it
        ("2852039166", "link-local address 169.254.169.254"),
        ("0xa9fea9fe", "link-local address 169.254.169.254"),
        ("0xA9FEA9FE", "link-local address 169.254.169.254"),
        ("0251.0376.0251.0376", "link-local address 169.254.169.254"),
        ("0xa9.0xfe.0xa9.0xfe", "link-local address 169.254.169.254"),
        ("169.254.43518", "link-local address 169.254.169.254"),
        ("169.16689662", "link-local address 169.254.169.254"),
        ("169.254.169.254.", "link-local address 169.254.169.254"),
        ("\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14",
         "link-local address 169.254.169.254"),  # fullwidth digits, IDNA-folded
        # private networks in numeric disguise
        ("167772161", "private address 10.0.0.1"),
        ("012.0.0.1", "private address 10.0.0.1"),
        ("0x0a.1", "private address 10.0.0.1"),
        ("3232235777", "private address 192.168.1.1"),
        ("0xc0a80101", "private address 192.168.1.1"),
        ("0254.0x10.1", "private address 172.16.0.1"),
        ("017700000001", "loopback address 127.0.0.1"),
        ("0x7f.0.0.1", "loopback address 127.0.0.1"),
        # IPv6 literals: ULA, link-local, embedded IPv4 (mapped, compatible, NAT64, 6to4)
        ("[fd00::1]", "private address fd00::1"),
        ("[fc00::1]", "private address fc00::1"),
        ("[FD12:3456:789A::1]", "private address fd12:3456:789a::1"),
        ("[fe80::1]", "link-local address fe80::1"),
        ("[fe80::1%25eth0]", "link-local address fe80::1"),
        ("[febf:ffff::1]", "link-local"),
        ("[::ffff:169.254.169.254]", "link-local address 169.254.169.254 (embedded"),
        ("[::ffff:a9fe:a9fe]", "link-local address 169.254.169.254 (embedded"),
        ("[0:0:0:0:0:ffff:7f00:1]", "loopback address 127.0.0.1 (embedded"),
        ("[::ffff:10.0.0.1]", "private address 10.0.0.1 (embedded"),
        ("[::169.254.169.254]", "link-local address 169.254.169.254 (embedded"),
        ("[64:ff9b::a9fe:a9fe]", "link-local address 169.254.169.254 (embedded"),
        ("[2002:a9fe:a9fe::1]", "link-local address 169.254.169.254 (embedded"),
        ("[::]", "unspecified"),
        ("[ff02::1]", "multicast"),
    ],
)  # fmt: skip
def test_given_an_internal_address_in_any_spelling_when_checked_then_refused_without_dns(
    host: str, category: str
) -> None:
    # Given a resolver that would answer nothing; When the URL is checked
    dns = ScriptedDNS({})
    with pytest.raises(EgressRefused) as refused:
        resolve_target(f"http://{host}:8080/hook", [], dns)

    # Then it is refused for what the address really is
    assert category in refused.value.reason
    assert dns.asked == []  # a numeric host is never handed to a resolver


@pytest.mark.parametrize(
    "answers",
    [
        [["169.254.169.254"], ["93.184.215.14"]],  # private first: refused at once
        [["93.184.215.14", "fd00::1"]],  # one private address among public ones
        [["93.184.215.14", "::ffff:127.0.0.1"]],
        [["fe80::1%eth0", "93.184.215.14"]],
    ],
)
def test_given_a_name_answering_any_internal_address_when_checked_then_refused(
    answers: list[list[str]],
) -> None:
    # Given a name whose answers include an internal address; When checked; Then refused
    with pytest.raises(EgressRefused, match=r"rebind\.example resolves to a"):
        resolve_target("https://rebind.example/h", [], ScriptedDNS({"rebind.example": answers}))


@pytest.mark.parametrize("url", ["http://LOCALHOST:8000/", "http://localhost.:8000/"])
def test_given_the_system_resolver_when_localhost_is_spelled_differently_then_refused(
    url: str,
) -> None:
    # Given the OS resolver; When localhost is spelled in capitals or with the root dot
    # Then the guard still sees loopback
    with pytest.raises(EgressRefused, match="loopback"):
        resolve_target(url, [])


class Recorder:
    """An HTTP server on one loopback address that records requests and answers ``reply``."""

    def __init__(self, host: str, port: int, reply: tuple[int, dict[str, str]]) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        requests, (status, headers) = self.requests, reply

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                requests.append((self.path, dict(self.headers.items())))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def two_hosts() -> Iterator[Callable[..., tuple[Recorder, Recorder, int]]]:
    """Two real servers on one port: 127.0.0.1 (allowlisted) and 127.0.0.2 (not)."""
    made: list[Recorder] = []

    def make(reply: tuple[int, dict[str, str]] = (200, {})) -> tuple[Recorder, Recorder, int]:
        port = free_port()
        status, headers = reply
        headers = {k: v.replace("{port}", str(port)) for k, v in headers.items()}
        made.extend(
            [Recorder("127.0.0.1", port, (status, headers)), Recorder("127.0.0.2", port, (200, {}))]
        )
        return made[-2], made[-1], port

    yield make
    for recorder in made:
        recorder.close()


@pytest.fixture()
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """The process's resolver, answering ``rebind.test`` from a script (every other name is
    resolved for real). Each ``getaddrinfo`` of the name consumes one answer."""
    script: dict[str, list[list[str]]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in script:
            answers = script[host]
            addresses = answers.pop(0) if len(answers) > 1 else answers[0]
            return [info for address in addresses for info in real(address, port, *args, **kwargs)]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return script


def delivery_context() -> DeliveryContext:
    settings = load_settings(webhook_allowlist=["127.0.0.1/32"])
    return DeliveryContext(
        settings=settings,
        http=httpx.Client(timeout=5, follow_redirects=False),  # as the Deliverer builds it
        redis=redis.Redis.from_url("redis://127.0.0.1:1/0"),  # unused by HTTP channels
    )


def test_given_dns_rebinding_when_a_webhook_is_delivered_then_the_checked_address_is_the_one_connected(
    two_hosts: Callable[..., tuple[Recorder, Recorder, int]],
    rebinding_dns: dict[str, list[list[str]]],
) -> None:
    allowed, internal, port = two_hosts()
    # Given a name that first resolves to the allowed address, then to an internal one
    rebinding_dns["rebind.test"] = [["127.0.0.1"], ["127.0.0.2"]]
    ctx = delivery_context()

    # When a webhook to it is delivered through the real HTTP path
    attempt, _ = post_json(ctx, f"http://rebind.test:{port}/hook", b"{}")

    # Then the request went to the address that was checked, under the name, and the name
    # was resolved exactly once (a second lookup by the HTTP client would have rebound)
    assert attempt.result == 200
    assert [path for path, _ in allowed.requests] == ["/hook"]
    assert allowed.requests[0][1]["Host"] == f"rebind.test:{port}"
    assert internal.requests == []
    assert rebinding_dns["rebind.test"] == [["127.0.0.2"]]  # one answer consumed

    # When the next delivery finds the name rebound to the internal address
    attempt, _ = post_json(ctx, f"http://rebind.test:{port}/hook", b"{}")

    # Then it is refused by the guard before any connection
    assert isinstance(attempt.result, EgressRefused)
    assert "127.0.0.2" in str(attempt.result) and internal.requests == []
    ctx.http.close()


def test_given_an_allowed_host_that_redirects_inside_when_delivered_then_the_redirect_is_not_followed(
    two_hosts: Callable[..., tuple[Recorder, Recorder, int]],
) -> None:
    # Given an allowed receiver answering 307 towards an internal address
    allowed, internal, port = two_hosts((307, {"Location": "http://127.0.0.2:{port}/steal"}))
    ctx = delivery_context()

    # When a webhook is delivered to it
    attempt, _ = post_json(ctx, f"http://127.0.0.1:{port}/hook", b"{}")

    # Then the 3xx is the outcome; nothing reached the internal address
    assert attempt.result == 307
    assert len(allowed.requests) == 1 and internal.requests == []
    ctx.http.close()


# --- SQL is parameterised ------------------------------------------------------------------------

INJECTIONS = (
    "' OR 1=1 --",
    "'; DROP TABLE users; --",
    '" OR ""="',
    "1; DELETE FROM users",
    "\u2019 OR \u20191\u2019=\u20191",  # right single quotation marks
    "\uff07; DROP TABLE users; --",  # fullwidth apostrophe
    "\u02bc OR 1=1 --",  # modifier letter apostrophe
    "\\'; DROP TABLE users; --",
    "%' OR '%'='",
    "$$; DROP TABLE users; $$",
    "a\tb\nc\\N\r\\.",  # COPY's own delimiters and markers
    "x\x00y",
)


def schema(db: Database) -> list[str]:
    """The public tables, day partitions aside (writes create those for their days)."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        )
        return [r[0] for r in rows if not re.search(r"_p\d{8}$", r[0])]


def clean_refusal(value: str, exc: BaseException) -> bool:
    """What a refusal may look like: an unknown column named, or NUL refused by the driver
    before any SQL is sent (PostgreSQL text cannot hold it)."""
    message = str(exc)
    too_long = "value too long for type character varying" in message  # refused as data
    return (
        ("has no column" in message)
        or too_long
        or ("\x00" in value and "NUL (0x00)" in message and isinstance(exc, ValueError))
    )


@pytest.fixture()
def canary(pg_database: Database) -> dict[str, Any]:
    """One row in each user-facing table, to prove nothing was deleted or changed."""
    from models.repositories import ChannelRepository, TrackedWalletRepository, UserRepository

    with pg_database.session() as s:
        user = UserRepository(s).create("canary@example.com", "pro")
        ChannelRepository(s).create(user.id, "redis", "hw:notify:user:1", name="canary")
        TrackedWalletRepository(s).track(user.id, "0x" + "ab" * 20, "canary")
        return {"user_id": user.id}


def fingerprint(db: Database) -> dict[str, Any]:
    tables = schema(db)  # first: one connection at a time keeps the shared pool as it was
    with db.engine.connect() as conn:
        return {
            "schema": tables,
            "users": conn.execute(text("SELECT id, email, tier FROM users ORDER BY id")).all(),
            "channels": conn.execute(text("SELECT id, name FROM notification_channels")).all(),
            "wallets": conn.execute(text("SELECT id, address, label FROM tracked_wallets")).all(),
        }


@pytest.mark.integration
def test_given_injection_strings_when_every_generic_repository_filter_takes_them_then_nothing_matches_and_nothing_changes(
    pg_database: Database, canary: dict[str, Any]
) -> None:
    from sqlalchemy import String, Text, inspect

    import models.repositories as repositories

    before = fingerprint(pg_database)
    classes = [
        getattr(repositories, name)
        for name in repositories.__all__
        if isinstance(getattr(repositories, name), type)
        and issubclass(getattr(repositories, name), repositories.Repository)
        and getattr(repositories, name) is not repositories.Repository
    ]
    assert len(classes) >= 8
    tried = refused = 0
    for cls in classes:
        columns = [c.key for c in inspect(cls.model).columns if isinstance(c.type, String | Text)]
        for column in columns:
            for value in INJECTIONS:
                calls: list[Callable[[Any], Any]] = [
                    lambda r: r.list({column: value}),  # noqa: B023 - used at once
                    lambda r: r.list({column: [value, "x"]}),  # noqa: B023
                    lambda r: r.count({column: value}),  # noqa: B023
                    lambda r: r.update_where({column: value}, **{column: value}),  # noqa: B023
                    lambda r: r.delete_where({column: value}),  # noqa: B023
                ]
                for call in calls:
                    tried += 1
                    with pg_database.session() as session:
                        try:
                            result = call(cls(session))
                        except Exception as exc:
                            assert clean_refusal(value, exc), (cls, column, value, exc)
                            refused += 1
                            continue
                        assert result in ([], 0), (cls.__name__, column, value, result)
        # Filter keys and orderings name columns; injected ones are refused by name
        with pg_database.session() as session:
            repository = cls(session)
            for value in INJECTIONS[:3]:
                with pytest.raises(ValueError, match="has no column"):
                    repository.list({value: 1})
                with pytest.raises(ValueError, match="has no column"):
                    repository.list(order_by=value)
                with pytest.raises(ValueError, match="has no column"):
                    repository.update_where({"id": 1}, **{value: 1})
    assert tried > 1000 and 0 < refused < tried
    assert fingerprint(pg_database) == before


@pytest.mark.integration
def test_given_injection_strings_as_data_when_every_specific_repository_method_takes_them_then_they_are_stored_verbatim_or_refused(
    pg_database: Database, canary: dict[str, Any]
) -> None:
    from decimal import Decimal

    from events import AssetContext, Fill, Position, Trade
    from models.repositories import (
        AlertRepository,
        AssetContextRepository,
        BarRepository,
        ChannelRepository,
        DeadLetterRepository,
        FillRepository,
        HealthMetricRepository,
        NotificationRepository,
        PositionRepository,
        SessionRepository,
        TrackedWalletRepository,
        TradeRepository,
        UserRepository,
    )

    schema_before = schema(pg_database)
    user_id = canary["user_id"]
    t0 = 1_787_052_600_000
    for n, value in enumerate(INJECTIONS):
        has_nul = "\x00" in value
        short = value[:30]
        try:
            with pg_database.session() as s:
                # reads: nothing matches
                assert UserRepository(s).by_email(value) is None
                assert NotificationRepository(s).by_key(value) is None
                assert NotificationRepository(s).recent(None, value, 10) == []
                assert TradeRepository(s).for_coin(value) == []
                assert BarRepository(s).bars(value) == []
                assert SessionRepository(s).get(value) is None
                assert HealthMetricRepository(s).series(value, dt_epoch()) == []
                assert AlertRepository(s).for_user(user_id) == []
                # writes: the exact string is stored, wherever it goes
                user = UserRepository(s).create(f"{n}{short}@x.io".replace(" ", "_"))
                ChannelRepository(s).create(user.id, "webhook", value, secret=value, name=short)
                TrackedWalletRepository(s).track(user.id, short, short)
                DeadLetterRepository(s).record(value, value, {"payload": value})
                SessionRepository(s).upsert({"id": f"s{n}", "source": short, "started_at": t0,
                                             "gaps": [{"note": value}]})  # fmt: skip
                # bulk COPY path (PostgreSQL): text columns carry COPY's own metacharacters
                TradeRepository(s).add_batch([
                    Trade(short, t0 + n, n, Decimal("1.5"), Decimal(2), "B", short, short, None)
                ])  # fmt: skip
                AssetContextRepository(s).add_batch([
                    AssetContext(short, t0 + n, Decimal(1), Decimal(1), Decimal(1), Decimal(1),
                                 None, None, Decimal(1), Decimal(1))
                ], 60_000)  # fmt: skip
                PositionRepository(s).add_batch([
                    Position(short, short[:16], t0 + n, Decimal(1), None, Decimal(1), Decimal(1),
                             Decimal(0), None, short[:16], 3, Decimal(1))
                ])  # fmt: skip
                FillRepository(s).add_batch([
                    Fill(short, short, t0 + n, n, n, Decimal(1), Decimal(1), "A", short,
                         Decimal(0), Decimal(0), Decimal(0), short[:16], True, short)
                ])  # fmt: skip
        except Exception as exc:
            assert (has_nul and clean_refusal(value, exc)) or (has_nul and "0x00" in str(exc)), (
                value,
                exc,
            )
            continue
        assert not has_nul, "a NUL was stored"
        # read back through raw SQL with bind parameters: byte for byte what went in
        with pg_database.engine.connect() as conn:

            def one(sql: str, **params: Any) -> Any:
                return conn.execute(text(sql), params).one()

            assert one("SELECT target, secret, name FROM notification_channels WHERE target = :v",
                       v=value) == (value, value, short)  # fmt: skip
            assert one("SELECT address, label FROM tracked_wallets WHERE label = :v AND "
                       "user_id <> :u", v=short, u=user_id) == (short.lower(), short)  # fmt: skip
            assert one("SELECT task, reason FROM dead_letters WHERE task = :v", v=value) == (
                value, value)  # fmt: skip
            # trades' hash and buyer are bytes: read through the model's column types
            t = TradeSnapshot
            assert conn.execute(select(t.coin, t.hash, t.buyer).where(t.tid == n)).one() == (
                short, short, short)  # fmt: skip
            assert one("SELECT coin FROM asset_context_snapshots WHERE coin = :v", v=short) == (
                short,
            )
            assert one('SELECT "user", leverage_type FROM position_snapshots WHERE time = :t',
                       t=t0 + n) == (short, short[:16])  # fmt: skip
            assert one('SELECT "dir", fee_token, hash FROM user_fills WHERE tid = :n', n=n) == (
                short, short[:16], short)  # fmt: skip
        with pg_database.session() as s:
            assert [t.coin for t in TradeRepository(s).for_coin(short)] == [short]
    assert schema(pg_database) == schema_before
    with pg_database.engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM users WHERE email = 'canary@example.com'")
            ).scalar_one()
            == 1
        )


def dt_epoch() -> Any:
    import datetime as dt

    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


CLI_INJECTIONS = tuple(v for v in INJECTIONS if "\x00" not in v)  # argv cannot carry NUL


@pytest.mark.integration
def test_given_injection_strings_when_every_cli_argument_reaching_sql_takes_them_then_stored_verbatim_or_refused(
    pg_database: Database, canary: dict[str, Any], postgres_url: str, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.hset("hw:latest:mid", mapping={"BTC": '{"px":"1","time":1}'})
    client.close()
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "WEBHOOK_ALLOWLIST": "127.0.0.0/8"}

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=True)

    before = fingerprint(pg_database)
    assert run("users", "add", "ann@example.com", "--tier", "enterprise").exit_code == 0
    channel = run("channels", "add", "--user", "ann@example.com", "--kind", "redis").output.split()[
        1
    ]
    outcomes: list[tuple[tuple[str, ...], int]] = []
    stored: dict[str, list[str]] = {"names": [], "labels": [], "targets": []}
    for n, value in enumerate(CLI_INJECTIONS):
        wallet = "0x" + f"{n:02x}" * 20
        commands: list[tuple[str, ...]] = [
            ("users", "set-tier", value, "pro"),
            ("users", "list"),
            ("alerts", "list", "--user", value),
            ("alerts", "add", "--user", value, "--coin", "BTC", "--kind", "price_above",
             "--threshold", "1", "--channel", channel),
            ("alerts", "add", "--user", "ann@example.com", "--coin", value, "--kind",
             "price_above", "--threshold", "1", "--channel", channel),
            ("alerts", "add", "--user", "ann@example.com", "--coin", "BTC", "--kind",
             "price_above", "--threshold", value, "--channel", channel),
            ("alerts", "add", "--user", "ann@example.com", "--coin", "BTC", "--kind",
             "liquidation_distance_below", "--threshold", "5", "--wallet", value,
             "--channel", channel),
            ("alerts", "pause", value),
            ("wallets", "list", "--user", value),
            ("wallets", "track", "--user", "ann@example.com", value),
            ("wallets", "untrack", "--user", "ann@example.com", value),
            ("wallets", "track", "--user", "ann@example.com", wallet, "--label", value),
            ("channels", "list", "--user", value),
            ("channels", "add", "--user", value, "--kind", "redis"),
            ("channels", "add", "--user", "ann@example.com", "--kind", "redis", "--name", value),
            ("channels", "add", "--user", "ann@example.com", "--kind", "telegram", "--target",
             "@" + value, "--secret", value),
            ("channels", "rm", value),
            ("notifications", "list", "--user", value),
            ("db", "downgrade", value),
        ]  # fmt: skip
        for args in commands:
            result = run(*args)
            outcomes.append((args, result.exit_code))
            assert result.exit_code in (0, 2), (args, result.output, result.exception)
            if result.exit_code == 2:
                lines = result.stderr.strip().splitlines()
                assert len(lines) == 1 and lines[0].startswith("hyperwatch: "), result.stderr
        stored["names"].append(value)
        stored["labels"].append(value)
        # A Telegram chat id and bot token have a shape (domain/notify/credentials.py) that
        # no injection string has: that channel is refused, with nothing written.
        stored["targets"].append("@" + value)
    accepted = [args for args, code in outcomes if code == 0]
    assert len(accepted) >= 3 * len(CLI_INJECTIONS)  # listings, label, name

    # Then every accepted string is stored exactly as given
    with pg_database.engine.connect() as conn:
        names = {r[0] for r in conn.execute(text("SELECT name FROM notification_channels"))}
        targets = {r[0] for r in conn.execute(text("SELECT target FROM notification_channels"))}
        secrets = {r[0] for r in conn.execute(text("SELECT secret FROM notification_channels"))}
        labels = {r[0] for r in conn.execute(text("SELECT label FROM tracked_wallets"))}
    assert set(stored["names"]) <= names and set(stored["labels"]) <= labels
    assert not set(stored["targets"]) & targets and not set(CLI_INJECTIONS) & secrets
    # and nothing else changed: the canary rows and the schema are intact
    after = fingerprint(pg_database)
    assert after["schema"] == before["schema"]
    assert set(before["users"]) <= set(after["users"])
    assert set(before["channels"]) <= set(after["channels"])
    assert set(before["wallets"]) <= set(after["wallets"])


# --- static check: no SQL built by string formatting ------------------------------------------------

# The audited sites that format SQL text, each an identifier (quoted by the dialect) or an
# integer computed in code — never a value from input. PostgreSQL accepts no bind parameters
# in DDL or in COPY's table name, so these must be formatted. (path, function) → count.
AUDITED_SQL_FORMATTING = {
    # CREATE TABLE <partition> PARTITION OF <table> FOR VALUES FROM (<int>) TO (<int>):
    # names from PARTITIONED_TABLES + a date, quoted; bounds are ints computed from the date.
    ("models/partitions.py", "ensure_partitions"): 1,
    # DROP TABLE <partition>: a name read from pg_inherits that matched <table>_pYYYYMMDD.
    ("models/partitions.py", "drop_older_than"): 1,
    # Table and column names from SQLAlchemy Table metadata, each quoted by the dialect:
    # INSERT … SELECT … ON CONFLICT … RETURNING <columns>;
    ("models/repositories/bulk.py", "insert_ignore_values"): 1,
    # COPY <table> (<columns>) FROM STDIN, under a savepoint;
    ("models/repositories/bulk.py", "_copy_if_all_new"): 1,
    # CREATE TEMP TABLE / TRUNCATE / COPY … FROM STDIN into the staging table (its INSERT …
    # SELECT, built by _stage_and_insert, is executed and counted in insert_ignore_values).
    ("models/repositories/bulk.py", "_stage"): 3,
    # 0010: ALTER TABLE trade_snapshots ALTER COLUMN <c> TYPE … USING …, ADD/DROP CONSTRAINT
    # ck_trade_snapshots_<c>_length: <c> from the migration's constant HEX_COLUMNS, lengths
    # from its constant _LENGTH (ints).
    ("models/migrations/versions/0010_compact_trades.py", "upgrade"): 1,
    ("models/migrations/versions/0010_compact_trades.py", "downgrade"): 2,
    # 0012: the trades table rebuilt. Renames of trade_snapshots, its key, its partitions and
    # their indexes to <name>_<constant suffix> (names read from pg_inherits / pg_index);
    # CREATE TABLE <partition> PARTITION OF trade_snapshots <bound> (the name and the bound
    # expression read from the catalog, pg_get_expr); INSERT … SELECT with the migration's
    # constant column lists and joins; DROP of the set-aside tables; the CHECKs built by
    # models.hexbytes.length_check from constant names and int lengths.
    ("models/migrations/versions/0012_wallet_dictionary.py", "_set_aside"): 4,
    ("models/migrations/versions/0012_wallet_dictionary.py", "_rebuild"): 7,
    ("models/migrations/versions/0012_wallet_dictionary.py", "upgrade"): 1,
}
SQL_ROOTS = ("models", "tasks", "workers")
_RAW_SQL_METHODS = {"exec_driver_sql", "copy_expert", "copy_from", "executescript"}
_STR_EXECUTE_METHODS = {"execute", "executemany"}


def _is_static(node: ast.AST, assigned: dict[str, list[ast.AST]], depth: int = 0) -> bool:
    """True when ``node`` is a string fixed in the source: literals, literal concatenation,
    an f-string without placeholders, or a local name only ever bound to such."""
    if depth > 10:
        return False
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return all(isinstance(v, ast.Constant) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_static(node.left, assigned, depth + 1) and _is_static(
            node.right, assigned, depth + 1
        )
    if isinstance(node, ast.Name) and node.id in assigned:
        return all(_is_static(v, assigned, depth + 1) for v in assigned[node.id])
    return False


def _is_formatting(node: ast.AST, assigned: dict[str, list[ast.AST]], depth: int = 0) -> bool:
    """True when ``node`` builds a string from values: an f-string with placeholders,
    ``%`` on a string, ``.format()``, ``+`` with a non-literal, or a name bound to one."""
    if depth > 10:
        return False
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return isinstance(node.left, ast.Constant | ast.JoinedStr) or _is_formatting(
            node.left, assigned, depth + 1
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        sides = (node.left, node.right)
        stringy = any(isinstance(s, ast.Constant | ast.JoinedStr) for s in sides) or any(
            _is_formatting(s, assigned, depth + 1) for s in sides
        )
        return stringy and not _is_static(node, assigned, depth + 1)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "format" and isinstance(node.func.value, ast.Constant):
            return True
        if node.func.attr == "join" and isinstance(node.func.value, ast.Constant):
            return True
    if isinstance(node, ast.Name) and node.id in assigned:
        return any(_is_formatting(v, assigned, depth + 1) for v in assigned[node.id])
    return False


def sql_formatting_sites(source: str, path: str) -> list[tuple[str, str, int]]:
    """(path, function, line) of every SQL sink whose SQL text is built from values.

    Sinks: SQLAlchemy ``text()`` and ``literal_column()`` (however imported), and the raw
    DBAPI/driver calls ``exec_driver_sql``, ``copy_expert``, ``copy_from``, ``executescript``,
    and ``execute``/``executemany`` given a string. ``text()`` must get a string fixed in
    the source; the others are flagged when handed a formatted string.
    """
    tree = ast.parse(source)
    sa_names: set[str] = set()  # local names bound to sqlalchemy's text / literal_column
    sa_modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            for alias in node.names:
                if alias.name in ("text", "literal_column"):
                    sa_names.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("sqlalchemy"):
                    sa_modules.add(alias.asname or alias.name.split(".")[0])
    found: list[tuple[str, str, int]] = []

    def visit(scope: ast.AST, function: str) -> None:
        assigned: dict[str, list[ast.AST]] = {}
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
            elif (isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name)) or (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and node.value is not None
            ):
                assigned.setdefault(node.target.id, []).append(node.value)  # type: ignore[arg-type]
        for node in ast.walk(scope):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func, arg = node.func, node.args[0]
            is_sa = (isinstance(func, ast.Name) and func.id in sa_names) or (
                isinstance(func, ast.Attribute)
                and func.attr in ("text", "literal_column")
                and isinstance(func.value, ast.Name)
                and func.value.id in sa_modules
            )
            if is_sa:
                if not _is_static(arg, assigned):
                    found.append((path, function, node.lineno))
            elif (
                isinstance(func, ast.Attribute)
                and func.attr in _RAW_SQL_METHODS | _STR_EXECUTE_METHODS
                and _is_formatting(arg, assigned)
            ):
                found.append((path, function, node.lineno))

    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for fn in functions:
        visit(fn, fn.name)
    module_level = ast.Module(
        body=[n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef
                                                        | ast.ClassDef)],
        type_ignores=[],
    )  # fmt: skip
    visit(module_level, "<module>")
    return sorted(set(found))


def test_given_the_checker_when_shown_each_way_of_formatting_sql_then_it_flags_them_all() -> None:
    # Given every way of building SQL from a value (and the safe forms beside them)
    source = """
from sqlalchemy import text as sql_text
import sqlalchemy as sa

def bad(conn, cur, name, value):
    conn.execute(sql_text(f"SELECT * FROM t WHERE a = '{value}'"))
    conn.execute(sql_text("SELECT * FROM t WHERE a = '%s'" % value))
    conn.execute(sa.text("SELECT * FROM t WHERE a = '{}'".format(value)))
    conn.execute(sql_text("SELECT * FROM t WHERE a = '" + value + "'"))
    q = f"DELETE FROM {name}"
    conn.execute(sql_text(q))
    conn.exec_driver_sql(f"DROP TABLE {name}")
    cur.execute("SELECT %s" % value)
    cur.copy_expert(f"COPY {name} FROM STDIN", None)
    cur.execute(" ".join(["SELECT", value]))
    conn.execute(sa.literal_column(value))

def good(conn, cur, value):
    conn.execute(sql_text("SELECT * FROM t WHERE a = :v"), {"v": value})
    q = "SELECT 1"
    q += ", 2"
    conn.execute(sql_text(q))
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("SELECT %s", (value,))
    conn.execute(select_stmt(value))
"""
    # When checked; Then each of the ten bad calls is found, and none of the good ones
    sites = sql_formatting_sites(source, "example.py")
    assert sites == [("example.py", "bad", line) for line in (6, 7, 8, 9, 11, 12, 13, 14, 15, 16)]


def test_given_the_code_base_when_scanned_then_sql_is_formatted_only_at_the_audited_identifier_sites() -> (
    None
):
    # Given every module of models/, tasks/ and workers/ (migrations included)
    files = sorted(p for root in SQL_ROOTS for p in (REPO / root).rglob("*.py"))
    assert len(files) > 100

    # When each is scanned for SQL text built from values
    sites: dict[tuple[str, str], int] = {}
    for path in files:
        relative = str(path.relative_to(REPO))
        for _path, function, _line in sql_formatting_sites(path.read_text(), relative):
            sites[(relative, function)] = sites.get((relative, function), 0) + 1

    # Then only the audited, identifier-only sites format SQL — exactly as many as audited
    assert sites == AUDITED_SQL_FORMATTING


# --- the subscriber API -------------------------------------------------------------------------


@pytest.mark.e2e
def test_given_the_api_under_use_when_keys_and_channel_secrets_pass_through_then_none_leaks(
    tmp_path: Path, sentry: SentryReceiver, hooks: Receiver, postgres_url: str,
    pg_database: Database, redis_url: str,
) -> None:  # fmt: skip
    from tests.support.api import ADMIN_KEY, ApiClient, ApiProcess

    # Given `hyperwatch api` at DEBUG, with Sentry tracing every request, encrypted channel
    # secrets, and Telegram pointed at a local receiver
    process = ApiProcess(
        tmp_path, database_url=postgres_url, redis_url=redis_url, sentry_dsn=sentry.dsn,
        sentry_traces_sample_rate=1.0, log_level="DEBUG", webhook_allowlist="127.0.0.0/8",
        channel_secret_keys=CHANNEL_KEY, telegram_api_base=hooks.url("").rstrip("/"),
    ).wait_ready()  # fmt: skip
    api = ApiClient(process.url)
    try:
        ann = api.subscriber("ann@example.com", tier="pro")
        secrets = {**SECRETS, "api key": ann.key, "admin key": ADMIN_KEY}

        # When the subscriber adds a webhook, a Slack and a Telegram channel with their
        # secrets, test-sends each, lists them, is refused a Slack URL the guard stops, and
        # the key is then revoked and tried again, along with an invented one
        answers = [
            api.as_(ann, "POST", "/v1/channels", json={
                "kind": "webhook", "target": hooks.url(), "secret": WEBHOOK_SECRET}),
            api.as_(ann, "POST", "/v1/channels", json={
                "kind": "slack", "target": hooks.url(f"/services/{SLACK_PATH}")}),
            api.as_(ann, "POST", "/v1/channels", json={
                "kind": "telegram", "target": "123456", "secret": TELEGRAM_TOKEN}),
        ]  # fmt: skip
        assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]
        for channel in list(answers):
            sent = api.as_(ann, "POST", f"/v1/channels/{channel.json()['id']}/test")
            answers.append(sent)
            assert sent.json()["delivered"] is True, sent.text
        answers.append(api.as_(ann, "GET", "/v1/channels"))
        answers.append(api.as_(ann, "POST", "/v1/channels", json={
            "kind": "slack", "target": f"http://10.9.8.7/services/{SLACK_PATH}"}))  # fmt: skip
        assert answers[-1].status_code == 422
        answers.append(api.admin("DELETE", f"/v1/admin/keys/{ann.key_id}"))
        answers.append(api.as_(ann, "GET", "/v1/me"))
        assert answers[-1].status_code == 401
        answers.append(api.http.get("/v1/me", headers={"Authorization": f"Bearer {ann.key}x"}))
        # a client that puts its key where it does not belong: the query string
        answers.append(api.http.get("/v1/me", params={"api_key": ann.key, "k": ann.key}))
        metrics = httpx.get(f"{process.url}/metrics").text
    finally:
        api.close()
        assert process.stop() == 0
    assert len(hooks.received()) == 3  # each test send was delivered for real

    # Then no answer, log line, metric or Sentry envelope holds a key or a channel secret
    # (the Sentry key is how an envelope authenticates itself)
    def leaked(where: str, content: str | bytes, skip: Sequence[str] = ()) -> list[str]:
        body = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
        return [f"{n} in {where}" for n, s in secrets.items() if n not in skip and s in body]

    found = [f for a in answers for f in leaked(f"answer {a.request.url.path}", a.text)]
    log = process.log()
    assert "DEBUG" in log and "/v1/channels" in log  # the access lines were written
    found += leaked("the API's log", log) + leaked("/metrics", metrics)
    assert sentry.bodies, "no envelope reached the Sentry receiver"
    for index, body in enumerate(sentry.bodies):
        found += leaked(f"sentry envelope {index}", body, skip=("sentry key",))
    assert found == [], found
