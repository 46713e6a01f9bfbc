from __future__ import annotations

from starlette.requests import Request

from services.common.client_address import client_address


def _request(peer: str, headers: dict[str, str]) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "client": (peer, 5000), "headers": raw})


def test_untrusted_peers_cannot_claim_an_address() -> None:
    request = _request("203.0.113.9", {"X-Real-IP": "1.2.3.4", "X-Forwarded-For": "1.2.3.4"})
    assert client_address(request, ["127.0.0.1"]) == "203.0.113.9"


def test_the_gateway_is_believed() -> None:
    assert client_address(_request("127.0.0.1", {"X-Real-IP": "198.51.100.7"}), ["127.0.0.1"]) == (
        "198.51.100.7"
    )


def test_only_the_last_forwarded_hop_counts() -> None:
    request = _request("127.0.0.1", {"X-Forwarded-For": "6.6.6.6, 198.51.100.7"})
    assert client_address(request, ["127.0.0.1"]) == "198.51.100.7"
