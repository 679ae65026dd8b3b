"""SSRF guard: internal addresses are refused however they are spelled or resolved."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import pytest

from domain.notify.egress import (
    EgressRefused,
    Target,
    parse_allowlist,
    resolve_target,
    system_resolver,
)

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


class FakeDNS:
    """An injected resolver: a fixed answer per name, and a record of what was asked."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


def test_given_a_public_host_when_resolved_then_the_target_pins_the_checked_ip() -> None:
    dns = FakeDNS({"hooks.example.com": [PUBLIC_V4, PUBLIC_V6]})

    target = resolve_target("https://Hooks.Example.com/in/abc?x=1#frag", [], dns)

    assert target == Target(
        scheme="https", host="hooks.example.com", ip=PUBLIC_V4, port=443, path="/in/abc?x=1"
    )
    assert target.pinned_url() == f"https://{PUBLIC_V4}:443/in/abc?x=1"
    assert target.host_header == "hooks.example.com"
    assert dns.asked == [("hooks.example.com", 443)]


def test_given_a_rebinding_name_when_resolved_once_then_later_answers_do_not_matter() -> None:
    # Given a name whose DNS answer flips to loopback after the first lookup
    answers = iter([[PUBLIC_V4], ["127.0.0.1"]])
    target = resolve_target("http://rebind.example:8080/x", [], lambda h, p: next(answers))

    # Then the caller holds the address that was checked, not a name to re-resolve
    assert (target.ip, target.port, target.host_header) == (PUBLIC_V4, 8080, "rebind.example:8080")
    assert target.pinned_url() == f"http://{PUBLIC_V4}:8080/x"


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "CGNAT"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.0.8", "special-purpose"),
        ("198.18.0.1", "private"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fd00::1", "private"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fec0::1", "special-purpose"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback address 127.0.0.1 (embedded"),
        ("::ffff:169.254.169.254", "link-local address 169.254.169.254 (embedded"),
        ("::127.0.0.1", "loopback address 127.0.0.1 (embedded"),
        ("64:ff9b::a00:1", "private address 10.0.0.1 (embedded"),
        ("2002:7f00:1::", "loopback address 127.0.0.1 (embedded"),
        ("2001:db8::1", "private"),
    ],
)
def test_given_a_name_resolving_to_an_internal_address_when_checked_then_refused(
    address: str, category: str
) -> None:
    dns = FakeDNS({"evil.example": [address]})

    with pytest.raises(EgressRefused) as refused:
        resolve_target("https://evil.example/hook", [], dns)

    assert category in refused.value.reason
    assert "evil.example resolves to a" in str(refused.value)


def test_given_a_name_with_one_bad_address_among_good_ones_when_checked_then_refused() -> None:
    dns = FakeDNS({"mixed.example": [PUBLIC_V4, PUBLIC_V6, "10.0.0.7"]})

    with pytest.raises(EgressRefused, match=r"private address 10\.0\.0\.7"):
        resolve_target("https://mixed.example/", [], dns)


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0177.0.0.1", "0x7f.1", "127.1", "0x7f000001", "127.0.0.1", "0", "[::1]"],
)
def test_given_numeric_tricks_for_loopback_when_checked_then_refused_without_dns(
    host: str,
) -> None:
    dns = FakeDNS({})

    with pytest.raises(EgressRefused) as refused:
        resolve_target(f"http://{host}:8080/", [], dns)

    assert "loopback" in refused.value.reason or "unspecified" in refused.value.reason
    assert dns.asked == []


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://files.example/x", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://x.example", "only http and https"),
        ("hooks.example.com/path", "only http and https"),
        ("http://user:pw@hooks.example.com/", "credentials"),
        ("http://user@hooks.example.com/", "credentials"),
        ("http://hooks.example.com@127.0.0.1/", "credentials"),
        ("http:///path-only", "no host"),
        ("http://hooks.example.com:99999/", "invalid port"),
        ("http://hooks.example.com:http/", "invalid port"),
        ("http://bad_host!.example/", "not a valid host name"),
        ("http://127.0.0.1 .example/", "one line"),
        ("http://hooks.example.com/\nHost: x", "one line"),
        ("http://[not-v6]/", "malformed"),
        ("http://[v1.fe]/", "not a valid IPv6"),
        ("http://a..b.example/", "not a valid host name"),
    ],
)
def test_given_a_malformed_or_forbidden_url_when_checked_then_refused(url: str, words: str) -> None:
    with pytest.raises(EgressRefused, match=words):
        resolve_target(url, [], FakeDNS({"hooks.example.com": [PUBLIC_V4]}))


def test_given_an_allowlisted_cidr_when_loopback_is_the_target_then_it_is_permitted() -> None:
    allow = ["127.0.0.0/8"]

    plain = resolve_target("http://127.0.0.1:9000/hook", allow, FakeDNS({}))
    tricky = resolve_target("http://127.1:9000/hook", allow, FakeDNS({}))
    mapped = resolve_target(
        "http://local.test/", allow, FakeDNS({"local.test": ["::ffff:127.0.0.5"]})
    )

    assert (plain.ip, tricky.ip, mapped.ip) == ("127.0.0.1", "127.0.0.1", "::ffff:7f00:5")
    with pytest.raises(EgressRefused, match=r"private address 10\.0\.0\.1"):
        resolve_target("http://10.0.0.1/", allow, FakeDNS({}))


def test_given_an_allowlisted_host_name_when_it_resolves_internally_then_it_is_permitted() -> None:
    dns = FakeDNS({"hooks.internal": ["10.0.0.9"], "other.internal": ["10.0.0.9"]})
    allow = parse_allowlist(["Hooks.Internal.", " 192.168.0.0/16 "])

    assert resolve_target("https://hooks.internal/x", allow, dns).ip == "10.0.0.9"
    with pytest.raises(EgressRefused):
        resolve_target("https://other.internal/x", allow, dns)
    assert allow.permits_host("hooks.internal")


def test_given_a_bad_allowlist_entry_when_parsed_then_it_is_named() -> None:
    with pytest.raises(ValueError, match="'not a host!'"):
        parse_allowlist(["127.0.0.0/8", "not a host!"])


def test_given_dns_failure_when_resolving_then_the_os_error_propagates_as_transient() -> None:
    with pytest.raises(socket.gaierror):
        resolve_target("https://nowhere.example/", [], FakeDNS({}))


def test_given_an_empty_or_garbage_answer_when_resolving_then_refused() -> None:
    with pytest.raises(EgressRefused, match="does not resolve"):
        resolve_target("https://empty.example/", [], FakeDNS({"empty.example": []}))
    with pytest.raises(EgressRefused, match="non-address"):
        resolve_target("https://junk.example/", [], FakeDNS({"junk.example": ["junk"]}))


def test_given_ipv6_and_idn_hosts_when_public_then_accepted_with_proper_headers() -> None:
    dns = FakeDNS({"xn--bcher-kva.example": [PUBLIC_V4]})

    v6 = resolve_target(f"https://[{PUBLIC_V6}]:8443/h", [], dns)
    idn = resolve_target("https://bücher.example/h", [], dns)

    assert (v6.ip, v6.host_header) == (PUBLIC_V6, f"[{PUBLIC_V6}]:8443")
    assert v6.pinned_url() == f"https://[{PUBLIC_V6}]:8443/h"
    assert idn.host == "xn--bcher-kva.example"


@pytest.mark.parametrize("url", ["http://localhost:8000/hook", "http://127.1:8000/hook"])
def test_given_the_real_resolver_when_loopback_names_are_used_then_refused(url: str) -> None:
    with pytest.raises(EgressRefused, match="loopback"):
        resolve_target(url, [])


def test_given_the_real_resolver_and_an_allowlist_when_localhost_is_used_then_pinned() -> None:
    target = resolve_target("http://localhost:8000/hook", ["127.0.0.0/8", "::1/128"])

    assert target.ip in {"127.0.0.1", "::1"}
    assert target.ip in system_resolver("localhost", 8000)
