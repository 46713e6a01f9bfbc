"""The caller's address, taking the gateway's word for it only when the peer is the gateway."""

from __future__ import annotations

from collections.abc import Collection

from starlette.requests import Request


def client_address(request: Request, trusted_proxies: Collection[str]) -> str:
    peer = request.client.host if request.client else "unknown"
    if peer in trusted_proxies:
        real_ip = request.headers.get("x-real-ip")
        if real_ip:
            return real_ip.strip()
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            # The gateway appends the address it saw; everything before it is client-supplied.
            return forwarded.split(",")[-1].strip()
    return peer
