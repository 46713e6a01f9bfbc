"""A real SMTP relay (aiosmtpd) that can refuse recipients, hang up, or lack SMTPUTF8."""

from __future__ import annotations

from typing import Any

from services.gateway.mail_sink import MailSink, SinkHandler
from tests.conftest import free_port


class Relay(MailSink):
    """The mail sink, answering as a test tells it to.

    `replies`: recipient -> the RCPT replies to give in turn; once used up (or for any other
    recipient) the recipient is accepted. `always`: recipient -> the RCPT reply, every time.
    `hang_up`: recipients whose next DATA the relay answers by dropping the connection.
    """

    def __init__(self, port: int | None = None, *, smtputf8: bool = True) -> None:
        super().__init__("127.0.0.1", port or free_port(), smtputf8=smtputf8)
        self.replies: dict[str, list[str]] = {}
        self.always: dict[str, str] = {}
        self.hang_up: set[str] = set()
        self.refused: list[tuple[str, str]] = []

    def handler(self) -> Any:
        return _RelayHandler(self)

    def rcpt_reply(self, address: str) -> str | None:
        if address in self.always:
            return self.always[address]
        queued = self.replies.get(address)
        if queued:
            return queued.pop(0)
        return None


class _RelayHandler(SinkHandler):
    def __init__(self, relay: Relay) -> None:
        super().__init__(relay)
        self.relay = relay

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        reply = self.relay.rcpt_reply(address)
        if reply is not None:
            self.relay.refused.append((address, reply))
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        dropped = self.relay.hang_up.intersection(envelope.rcpt_tos)
        if dropped:
            self.relay.hang_up.difference_update(dropped)
            server.transport.close()
            return "421 4.4.2 connection dropped"
        return await super().handle_DATA(server, session, envelope)
