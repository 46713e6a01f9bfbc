"""Answering requests for codes, away from the request that asked.

`register`, `verify/resend` and `password-reset` each only write one `CodeRequest` row, the same
for every address. The sender answers the rows in the order they came: it replaces the address's
code (a real one when mail goes out, else one nobody is sent, which resets the tries alike) and
queues the mail the address gets, in one transaction. Whether an address has an account is thus
decided only here, where no caller is waiting on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth import emails
from services.auth.codes import CodeBook
from services.auth.models import CodePurpose, CodeRequest, CodeRequestAction, User
from services.auth.outbox import MailWakeup, queue_mail
from services.common.database import Database
from services.common.i18n import DEFAULT_LANGUAGE

logger = logging.getLogger("natomedia.auth.codes")


@dataclass(frozen=True)
class CodeRequests:
    codes: CodeBook
    code_minutes: int
    batch_size: int
    wakeup: MailWakeup | None = None

    async def answer_due(self, database: Database) -> int:
        """Answer one batch of requests, oldest first; return how many were answered."""
        due = (
            select(CodeRequest.id)
            .order_by(CodeRequest.created_at, CodeRequest.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        async with database.sessionmaker() as session, session.begin():
            # Claimed by deleting them, in the statement that picks them: two senders (two
            # replicas) never answer one request twice, which would mail a code the second
            # answer already replaced. PostgreSQL skips rows another sender holds; SQLite's
            # write lock makes the second sender wait and find them gone.
            claimed = await session.scalars(
                delete(CodeRequest)
                .where(CodeRequest.id.in_(due.scalar_subquery()))
                .returning(CodeRequest)
                .execution_options(synchronize_session=False)
            )
            requests = sorted(claimed, key=lambda request: (request.created_at, request.id))
            for request in requests:
                await self._answer(session, request)
        return len(requests)

    async def purge_stale_codes(self, database: Database) -> None:
        async with database.sessionmaker() as session, session.begin():
            await self.codes.purge_stale(session)

    async def _answer(self, session: AsyncSession, request: CodeRequest) -> None:
        user = await session.scalar(select(User).where(User.email_canonical == request.address))
        unverified = user is not None and not user.email_verified
        if request.contested and user is not None and unverified:
            user.registration_contested = True
        if not request.mail_allowed:
            return
        action = CodeRequestAction(request.action)
        purpose = (
            CodePurpose.RESET_PASSWORD
            if action is CodeRequestAction.RESET
            else CodePurpose.VERIFY_EMAIL
        )
        mail: emails.Email | None = None
        # An account's mail is in its language; the request's language covers the rest.
        language = user.language if user is not None else (request.language or DEFAULT_LANGUAGE)
        if user is not None and (action is CodeRequestAction.RESET or unverified):
            code = await self.codes.issue(session, purpose, request.address, user.id)
            expires_at = self.codes.expiry()
            if action is CodeRequestAction.RESET:
                mail = emails.password_reset_code(
                    user.email, code, self.code_minutes, expires_at, language=language
                )
            else:
                mail = emails.verification_code(
                    user.email,
                    code,
                    self.code_minutes,
                    expires_at,
                    language=language,
                    resent=action is CodeRequestAction.RESEND,
                )
        else:
            # Nothing to send a code for: the code is replaced all the same, so the tries on
            # this address start again exactly as they would after a real code.
            await self.codes.issue_unsent(
                session, purpose, request.address, user.id if user is not None else None
            )
            if user is not None and action is CodeRequestAction.REGISTER:
                mail = emails.account_exists(user.email, language=language)
        if mail is not None:
            queue_mail(session, mail, self.wakeup)
