"""A local SMTP server (aiosmtpd) that keeps every message: the dev default and the tests' inbox."""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import logging
import re
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from services.common.private_files import create_private, make_private_directory

logger = logging.getLogger("natomedia.mail_sink")
CODE_PATTERN = re.compile(r"\b(\d{6})\b")


@dataclass(frozen=True)
class ReceivedMail:
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""

    @property
    def code(self) -> str | None:
        match = CODE_PATTERN.search(self.text)
        return match.group(1) if match else None


class SinkHandler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        assert isinstance(message, EmailMessage)
        mail = ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), message)
        self.sink.deliver(mail, envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


class MailSink:
    """Receives mail on host:port; keeps it in memory and, with a directory, as .eml files."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1025,
        directory: Path | None = None,
        *,
        announce: bool = False,
        smtputf8: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.directory = directory
        self.announce = announce
        # Offered by default, as a modern relay does: mail to non-ASCII addresses is kept too.
        self.smtputf8 = smtputf8
        self.messages: list[ReceivedMail] = []
        self._arrived = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._controller: Controller | None = None

    def start(self) -> None:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._controller = Controller(
            self.handler(), hostname=self.host, port=self.port, enable_SMTPUTF8=self.smtputf8
        )
        self._controller.start()

    def handler(self) -> Any:
        """The aiosmtpd handler; a test relay may answer differently."""
        return SinkHandler(self)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def deliver(self, mail: ReceivedMail, raw: bytes) -> None:
        self.messages.append(mail)
        if self.directory is not None:
            # Saved mail holds live verification and reset codes: this user's eyes only.
            make_private_directory(self.directory)
            stem = f"{time.strftime('%Y%m%dT%H%M%S')}-{len(self.messages):04d}"
            for attempt in itertools.count():
                name = f"{stem}.eml" if attempt == 0 else f"{stem}-{attempt}.eml"
                try:
                    create_private(self.directory / name, raw)
                    break
                except FileExistsError:
                    continue  # a sink restarted within the second: never overwrite saved mail
        if self.announce:
            code = f"  code {mail.code}" if mail.code else ""
            print(f"[mail] to {', '.join(mail.recipients)}: {mail.subject}{code}", flush=True)  # noqa: T201
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._arrived.set)

    def to(self, address: str) -> list[ReceivedMail]:
        return [
            mail
            for mail in self.messages
            if address.lower() in (recipient.lower() for recipient in mail.recipients)
        ]

    async def wait_for(
        self, address: str, count: int = 1, timeout: float = 10.0
    ) -> list[ReceivedMail]:
        """Wait until `address` has received at least `count` messages; return them all."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.to(address)) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"{address} received {len(self.to(address))} of {count} mails")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=min(remaining, 0.2))
            except TimeoutError:
                pass
        return self.to(address)
