"""What hears of an account once a change commits: the mail sender, the `/me` cache, and media
and news (sessions ended, clients revoked)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth import emails
from services.auth.account_cache import AccountChangeFeed
from services.auth.models import ApiClient, User
from services.auth.outbox import MailWakeup, queue_mail
from services.common.database import after_commit
from services.common.revocation import RevocationPublisher


@dataclass(frozen=True)
class AccountEvents:
    wakeup: MailWakeup
    account_changes: AccountChangeFeed
    revocations: RevocationPublisher

    def mail(self, session: AsyncSession, mail: emails.Email) -> None:
        queue_mail(session, mail, self.wakeup)

    def code_requested(self, session: AsyncSession) -> None:
        """The sender answers the code request as soon as this session commits."""
        wakeup = self.wakeup

        async def wake() -> None:
            wakeup.set()

        after_commit(session, wake)

    def account_changed(self, session: AsyncSession, user: User) -> None:
        """What `GET /me` shows for `user` changes when this session commits."""
        self.account_changes.changed(session, user.id)

    def end_sessions(self, session: AsyncSession, user: User) -> None:
        """End every session of `user` when this session commits, in every service.

        Refresh tokens, access tokens (`sep`) and download URLs carry the epoch they were issued
        under; raising it refuses them all: here at once (refresh, and every call that changes
        the account or mints credentials), in media and news once told through Redis.
        """
        user.session_epoch += 1
        publisher, account, epoch = self.revocations, str(user.id), user.session_epoch

        async def tell() -> None:
            await publisher.end_sessions(account, epoch)

        after_commit(session, tell)

    def client_revoked(self, session: AsyncSession, client: ApiClient, now: datetime) -> None:
        """`client` is revoked when this session commits: its tokens and URLs die everywhere."""
        client.revoked_at = now
        publisher, client_id = self.revocations, client.client_id

        async def tell() -> None:
            await publisher.revoke_client(client_id)

        after_commit(session, tell)
