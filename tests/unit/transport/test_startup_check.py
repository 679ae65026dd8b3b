"""The start-up check: the patches run only on the kombu they were written against.

What differs is the *observed* version or source (monkeypatched), never kombu itself.
"""

from __future__ import annotations

import hashlib
import inspect

import pytest
from kombu.transport import redis as redis_transport

import tasks.application
from runtime import transport
from workers.cli import main

OTHER_DIGEST = hashlib.sha256(b"def _brpop_read(self, **options): ...").hexdigest()


@pytest.fixture
def not_yet_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in a fresh process: install() has not run, kombu's own functions are in place.
    monkeypatch.setattr(transport, "_installed", False)
    monkeypatch.setattr(redis_transport, "dumps", redis_transport.dumps)
    monkeypatch.setattr(redis_transport, "loads", redis_transport.loads)
    monkeypatch.setattr(redis_transport.Channel, "_brpop_read", transport.KOMBU_BRPOP_READ)


def test_given_the_installed_kombu_then_the_check_passes() -> None:
    # The kombu this environment has (constraints.txt) is the one the patches copy. When a
    # kombu upgrade fails here, read the new Channel._brpop_read against runtime/transport.py
    # before changing the digest (docs/OPERATIONS.md, "Upgrading kombu").
    assert transport.kombu_version().startswith(f"{transport.KOMBU_SERIES}.")
    assert transport.kombu_source_digest() == transport.KOMBU_BRPOP_READ_SHA256
    transport.check()


def test_the_digest_is_of_kombus_own_function_even_after_install() -> None:
    transport.install()
    assert transport.KOMBU_BRPOP_READ is not transport._brpop_read
    source = inspect.getsource(transport.KOMBU_BRPOP_READ)
    assert hashlib.sha256(source.encode()).hexdigest() == transport.kombu_source_digest()


def test_given_another_kombu_version_then_the_error_says_which_and_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport, "kombu_version", lambda: "5.8.1")

    with pytest.raises(transport.TransportMismatch) as raised:
        transport.check()

    message = str(raised.value)
    assert "written against kombu 5.7.x" in message
    assert f"Channel._brpop_read digest {transport.KOMBU_BRPOP_READ_SHA256[:12]}" in message
    assert "installed kombu 5.8.1 differs (version not 5.7.x)" in message
    assert "install the versions in constraints.txt" in message
    assert "\n" not in message


def test_given_the_same_version_with_other_source_then_the_digest_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport, "kombu_source_digest", lambda: OTHER_DIGEST)

    with pytest.raises(transport.TransportMismatch) as raised:
        transport.check()

    assert (
        f"installed kombu {transport.kombu_version()} differs "
        f"(Channel._brpop_read digest {OTHER_DIGEST[:12]})"
    ) in str(raised.value)


def test_given_a_kombu_without_sources_then_the_digest_is_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_source(_: object) -> str:
        raise OSError("could not get source code")

    monkeypatch.setattr(transport.inspect, "getsource", no_source)

    with pytest.raises(transport.TransportMismatch, match=r"digest unknown \(no source\)"):
        transport.check()


def test_given_a_transport_that_no_longer_encodes_through_dumps_then_the_check_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(redis_transport, "dumps")

    with pytest.raises(transport.TransportMismatch, match="no module-level dumps"):
        transport.check()


@pytest.mark.usefixtures("not_yet_installed")
def test_given_a_mismatch_then_install_patches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    kombu_loads = redis_transport.loads
    monkeypatch.setattr(transport, "kombu_version", lambda: "6.0.0")

    with pytest.raises(transport.TransportMismatch):
        transport.install()

    assert redis_transport.loads is kombu_loads
    assert redis_transport.Channel._brpop_read is transport.KOMBU_BRPOP_READ


@pytest.mark.usefixtures("not_yet_installed")
def test_given_install_twice_then_the_second_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    transport.install()
    assert redis_transport.Channel._brpop_read is transport._brpop_read
    monkeypatch.setattr(transport, "check", lambda: pytest.fail("checked again"))

    transport.install()

    assert (redis_transport.dumps, redis_transport.loads) == (transport.dumps, transport.loads)


@pytest.mark.usefixtures("not_yet_installed")
def test_given_a_mismatch_when_a_celery_process_starts_then_it_exits_2_with_the_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # celery -A tasks worker|beat|flower build the app through get_app.
    monkeypatch.setattr(tasks.application, "_app", None)
    monkeypatch.setattr(transport, "kombu_version", lambda: "5.8.0")

    with pytest.raises(SystemExit) as exited:
        tasks.application.get_app()

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("hyperwatch: hyperwatch's broker transport")
    assert "installed kombu 5.8.0 differs" in err


@pytest.mark.usefixtures("not_yet_installed")
def test_given_a_mismatch_when_the_ingester_starts_then_it_exits_2_with_the_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(transport, "kombu_source_digest", lambda: OTHER_DIGEST)

    with pytest.raises(SystemExit) as exited:
        main(["ingest"])

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("hyperwatch: hyperwatch's broker transport")
    assert f"Channel._brpop_read digest {OTHER_DIGEST[:12]}" in err
    assert len(err.splitlines()) == 1
