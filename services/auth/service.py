"""The auth rules: accounts, codes, sessions, password reset, partner clients.

No call reveals whether an address has an account: every branch of register, login, resend and
password-reset answers alike and spends the same hashing work; mail about an address is limited
per address whether or not the account exists.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.auth import emails
from services.auth.account_cache import AccountChangeFeed
from services.auth.addresses import EmailAddress
from services.auth.code_requests import CodeRequests
from services.auth.codes import CodeBook
from services.auth.config import AuthSettings
from services.auth.digests import (
    digests_match,
    keyed_digest,
    new_opaque_token,
    secret_digest,
)
from services.auth.exceptions import (
    AccountLocked,
    AccountNotVerified,
    ClientNotFound,
    InvalidClient,
    InvalidCode,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidResetToken,
    InvalidScope,
    PasswordRequired,
    UnsupportedAddress,
    WeakPassword,
)
from services.auth.login_addresses import NO_ACCOUNT, KnownAddresses
from services.auth.models import (
    ApiClient,
    CodePurpose,
    CodeRequest,
    CodeRequestAction,
    PasswordResetToken,
    SignInSession,
    User,
)
from services.auth.outbox import MailWakeup, queue_mail
from services.auth.passwords import PasswordHasher, failed_rules
from services.auth.refresh_tokens import RefreshClaims, RefreshTokens
from services.auth.tokens import AccessTokenIssuer, IssuedAccessToken
from services.common.clock import Clock
from services.common.database import after_commit, conflict_insert, utcnow
from services.common.i18n import DEFAULT_LANGUAGE, requested_language
from services.common.ratelimit import RateLimiter, rule
from services.common.revocation import RevocationPublisher
from services.common.scopes import MEDIA_DOWNLOAD

CLIENT_ID_PREFIX = "nmc_"
CLIENT_SECRET_PREFIX = "nms_"
# Compared against when a client id is unknown, so both paths do the same work.
_NO_SECRET_DIGEST = secret_digest(secrets.token_urlsafe(32))


_USERS = cast(Table, User.__table__)
# Built once: a Core statement on the table skips the ORM's execution path, and its cache key
# is computed on first use and kept (a statement built per call computes it every time).
_CREDENTIALS = select(
    _USERS.c.id,
    _USERS.c.password_hash,
    _USERS.c.email_verified_at,
    _USERS.c.roles,
    _USERS.c.session_epoch,
).where(_USERS.c.email_canonical == bindparam("email"))


@dataclass(frozen=True)
class Credentials:
    """What a login reads of an account."""

    id: uuid.UUID
    password_hash: str
    email_verified_at: datetime | None
    roles: list[str]
    session_epoch: int

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


@dataclass(frozen=True)
class IssuedTokens:
    access: IssuedAccessToken
    refresh_token: str
    # The session (refresh family) the pair belongs to.
    session_id: uuid.UUID | None = None


@dataclass(frozen=True)
class NewClient:
    client: ApiClient
    secret: str


class AuthService:
    def __init__(
        self,
        settings: AuthSettings,
        *,
        clock: Clock,
        limiter: RateLimiter,
        hasher: PasswordHasher,
        issuer: AccessTokenIssuer,
        code_key: bytes,
        wakeup: MailWakeup | None = None,
        account_changes: AccountChangeFeed | None = None,
        revocations: RevocationPublisher | None = None,
    ) -> None:
        self.settings = settings
        self.account_changes = account_changes
        self.revocations = revocations
        self.clock = clock
        self.limiter = limiter
        self.hasher = hasher
        self.issuer = issuer
        self.code_key = code_key
        self.wakeup = wakeup
        self.codes = CodeBook(
            code_key, clock, settings.code_ttl_seconds, settings.code_max_attempts
        )
        self.code_requests = CodeRequests(
            self.codes, settings.code_ttl_seconds // 60, settings.mail_batch_size, wakeup
        )
        self.refresh_tokens = RefreshTokens(
            code_key,
            clock,
            settings.refresh_family_ttl_seconds,
            reuse_grace_seconds=settings.refresh_reuse_grace_seconds,
        )
        self.known_addresses = KnownAddresses(code_key, clock, settings.known_login_address_days)
        self.code_minutes = settings.code_ttl_seconds // 60
        self.limits = {
            "register": rule(settings.register_rate_limit),
            "verify": rule(settings.verify_rate_limit),
            "resend": rule(settings.resend_rate_limit),
            "reset": rule(settings.password_reset_rate_limit),
            "login": rule(settings.login_rate_limit),
            "login_failures_pair": rule(settings.login_failures_per_account_and_address),
            "login_failures_account": rule(settings.login_failures_per_account),
            "token_client": rule(settings.token_rate_limit_per_client),
            "token_failures": rule(settings.token_failures_per_client),
        }
        self.mail_limits = [rule(text) for text in settings.mail_per_address_limits]

    # -- shared pieces -------------------------------------------------------------------------

    async def _user(self, session: AsyncSession, email: EmailAddress) -> User | None:
        return await session.scalar(select(User).where(User.email_canonical == email.canonical))

    async def _mail_budget(
        self, session: AsyncSession, kind: str, email: EmailAddress, user: User | None, caller: str
    ) -> tuple[bool, int]:
        """Count one mail about this address, and say when the next one could go.

        False (silently) past the per-address limits. Requests from an address the account
        logged in from lately have a budget of their own, so a stranger asking again and again
        cannot use up the owner's; at most twice the limits' mail goes to one address per kind.
        The same calls whether or not the account exists, so nothing shows which.
        """
        own = await self.known_addresses.is_known(session, user.id if user else NO_ACCOUNT, caller)
        key = ("mail", kind, "own" if own else "anyone", email.canonical)
        allowed = await self.limiter.allow_all(self.mail_limits, *key)
        return allowed, await self.limiter.wait_seconds(self.mail_limits, *key)

    def _account_changed(self, session: AsyncSession, user: User) -> None:
        """What `GET /me` shows for `user` changes when this session commits."""
        if self.account_changes is not None:
            self.account_changes.changed(session, user.id)

    def _mail(self, session: AsyncSession, mail: emails.Email) -> None:
        queue_mail(session, mail, self.wakeup)

    def _access(
        self, user: User | Credentials, session_id: uuid.UUID | None = None
    ) -> IssuedAccessToken:
        return self.issuer.for_account(
            user.id,
            email_verified=user.email_verified,
            roles=user.roles,
            session_epoch=user.session_epoch,
            session_id=session_id,
        )

    def _end_sessions(self, session: AsyncSession, user: User) -> None:
        """End every session of `user` when this session commits, in every service.

        Refresh tokens, access tokens (`sep`) and download URLs carry the epoch they were issued
        under; raising it refuses them all: here at once (refresh, and every call that changes
        the account or mints credentials), in media and news once told through Redis.
        """
        user.session_epoch += 1
        if self.revocations is not None:
            publisher, account, epoch = self.revocations, str(user.id), user.session_epoch

            async def tell() -> None:
                await publisher.end_sessions(account, epoch)

            after_commit(session, tell)

    def _client_revoked(self, session: AsyncSession, client: ApiClient) -> None:
        """`client` is revoked when this session commits: its tokens and URLs die everywhere."""
        client.revoked_at = self.clock.now()
        if self.revocations is not None:
            publisher, client_id = self.revocations, client.client_id

            async def tell() -> None:
                await publisher.revoke_client(client_id)

            after_commit(session, tell)

    async def _revoke_clients(self, session: AsyncSession, user: User) -> list[str]:
        """Revoke every API client of `user`; their names, oldest first."""
        clients = list(
            await session.scalars(
                select(ApiClient)
                .where(ApiClient.owner_id == user.id, ApiClient.revoked_at.is_(None))
                .order_by(ApiClient.created_at, ApiClient.client_id)
            )
        )
        for client in clients:
            self._client_revoked(session, client)
        return [client.name for client in clients]

    def _issue(self, user: User | Credentials) -> IssuedTokens:
        """A new session: an access token and the first refresh token of a new family."""
        token, claims = self.refresh_tokens.begin(user.id, user.session_epoch)
        return IssuedTokens(self._access(user, claims.family_id), token, claims.family_id)

    def _sign_in(
        self,
        session: AsyncSession,
        user: User | Credentials,
        *,
        caller: str,
        user_agent: str | None,
    ) -> IssuedTokens:
        """A new session, with the row the account page lists (the refresh family's own row
        still waits for its first refresh)."""
        issued = self._issue(user)
        now = self.clock.now()
        session.add(
            SignInSession(
                id=issued.session_id,
                user_id=user.id,
                session_epoch=user.session_epoch,
                created_at=now,
                last_used_at=now,
                expires_at=now + timedelta(seconds=self.settings.refresh_family_ttl_seconds),
                client_address=caller[:64],
                user_agent=(user_agent or "")[:256] or None,
            )
        )
        return issued

    async def _credentials(self, session: AsyncSession, email: EmailAddress) -> Credentials | None:
        # On a connection of its own, returned to the pool before the hash: logins waiting for
        # the hashing thread must not hold every pooled connection the other requests need.
        engine = session.bind
        assert isinstance(engine, AsyncEngine)
        async with engine.connect() as connection:
            row = (await connection.execute(_CREDENTIALS, {"email": email.canonical})).first()
        return None if row is None else Credentials(*row)

    async def _mark_verified(self, session: AsyncSession, user: User) -> None:
        """The mailbox answered: the address is the owner's from now on.

        Whatever was done with the account before then may have been someone else's doing
        (anyone can register any address), so every session opened before it ends, and the
        login addresses remembered before it stop being exempt from the account-wide limit.
        """
        user.email_verified_at = self.clock.now()
        self._end_sessions(session, user)
        await self.known_addresses.forget_all(session, user.id)
        self._account_changed(session, user)

    async def _request_code(
        self,
        session: AsyncSession,
        action: CodeRequestAction,
        email: EmailAddress,
        user: User | None,
        caller: str,
        *,
        contested: bool = False,
        language: str | None = None,
    ) -> int:
        """Record that a code was asked for `email`; the sender answers it (`code_requests`).

        One identical row for every address, so the request does the same work whether or not
        the address has an account. Returns the seconds until another code can be asked for.
        """
        kind = "reset" if action is CodeRequestAction.RESET else "verify"
        mail_allowed, resend_after = await self._mail_budget(session, kind, email, user, caller)
        session.add(
            CodeRequest(
                address=email.canonical,
                action=action.value,
                mail_allowed=mail_allowed,
                contested=contested,
                language=language if language is not None else requested_language(),
                # Wall-clock time, as the outbox's: requests are answered in this order, which a
                # frozen or coarse business clock would leave to chance.
                created_at=utcnow(),
            )
        )
        wakeup = self.wakeup
        if wakeup is not None:

            async def wake() -> None:
                wakeup.set()

            after_commit(session, wake)
        return resend_after

    # -- registration and verification ---------------------------------------------------------

    async def register(
        self,
        session: AsyncSession,
        email: EmailAddress,
        password: str,
        *,
        newsletter: bool,
        language: str = DEFAULT_LANGUAGE,
        caller: str,
    ) -> int:
        """Returns the seconds until another code can be asked for (for every address alike)."""
        await self.limiter.hit(self.limits["register"], "register", caller)
        if not self.settings.mail_smtputf8 and not email.normalized.isascii():
            # Without SMTPUTF8 the code could never be delivered: say so now, not never.
            raise UnsupportedAddress
        failed = failed_rules(password, email.local_part)
        if failed:
            raise WeakPassword(failed)
        user = await self._user(session, email)
        # One Argon2 computation and the same statements for every address, so a taken address
        # costs what a new one does.
        if user is not None and not user.email_verified:
            # The password on file stays: whoever typed the address again may not own it. If the
            # two differ, two people claim the address, and the code's redeemer settles which
            # password the account gets (`verify_email`).
            password_hash = user.password_hash
            contested = not await self.hasher.matches(password, password_hash)
        else:
            password_hash = await self.hasher.hash(password)
            contested = False
        now = self.clock.now()
        await session.execute(
            conflict_insert(session, User)
            .values(
                id=uuid.uuid4(),
                email=email.normalized,
                email_canonical=email.canonical,
                password_hash=password_hash,
                newsletter=newsletter,
                newsletter_since=now if newsletter else None,
                language=language,
                roles=[],
                session_epoch=0,
                registration_contested=False,
                created_at=now,
                updated_at=now,
            )
            # A taken address (or one registered by a parallel request a moment ago) is left
            # as it is.
            .on_conflict_do_nothing(index_elements=["email_canonical"])
        )
        return await self._request_code(
            session,
            CodeRequestAction.REGISTER,
            email,
            user,
            caller,
            contested=contested,
            language=language,
        )

    async def verify_email(
        self,
        session: AsyncSession,
        email: EmailAddress,
        code: str,
        *,
        password: str | None = None,
        caller: str,
        user_agent: str | None = None,
    ) -> IssuedTokens:
        await self.limiter.hit(self.limits["verify"], "verify", caller)
        # Before the code, so a password the policy refuses spends no try.
        if password is not None:
            failed = failed_rules(password, email.local_part)
            if failed:
                raise WeakPassword(failed)
        user = await self._user(session, email)
        # A contested registration does not spend its code without a password: the owner
        # answering with the code alone must not hand the account to the other registrant.
        password_required = user is not None and user.registration_contested and password is None
        owner = await self.codes.redeem(
            session,
            CodePurpose.VERIFY_EMAIL,
            email.canonical,
            code,
            consume=not password_required,
        )
        if user is None or owner != user.id:
            raise InvalidCode  # the code outlived its account
        if password_required:
            raise PasswordRequired
        if password is not None:
            user.password_hash = await self.hasher.hash(password)
            user.registration_contested = False
        if user.email_verified_at is None:
            await self._mark_verified(session, user)
        # Signing in with the emailed code counts as a login from this address.
        await self.known_addresses.remember(session, user.id, caller)
        return self._sign_in(session, user, caller=caller, user_agent=user_agent)

    async def resend_verification(
        self, session: AsyncSession, email: EmailAddress, *, caller: str
    ) -> int:
        """Returns the seconds until another code can be asked for (for every address alike)."""
        await self.limiter.hit(self.limits["resend"], "resend", caller)
        user = await self._user(session, email)
        return await self._request_code(session, CodeRequestAction.RESEND, email, user, caller)

    # -- sessions ------------------------------------------------------------------------------

    async def login(
        self,
        session: AsyncSession,
        email: EmailAddress,
        password: str,
        *,
        caller: str,
        user_agent: str | None = None,
    ) -> IssuedTokens:
        await self.limiter.hit(self.limits["login"], "login", caller)
        # Only failures count against an account, in windows that run out. One address gets a
        # few guesses per account; everyone together gets more per hour, except that an address
        # which logged in to the account lately is not held by that account-wide limit: failing
        # on purpose from elsewhere cannot lock the owner out, for a window or for good.
        pair_limit = self.limits["login_failures_pair"]
        account_limit = self.limits["login_failures_account"]
        pair_key = ("login-failures", email.canonical, caller)
        account_key = ("login-failures", email.canonical)
        await self.limiter.check(pair_limit, *pair_key)
        account_locked = not await self.limiter.would_allow(account_limit, *account_key)
        user = await self._credentials(session, email)
        if account_locked and not await self.known_addresses.is_known(
            session, user.id if user else NO_ACCOUNT, caller
        ):
            raise AccountLocked(await self.limiter.retry_after(account_limit, *account_key))
        new_hash: str | None = None
        if user is None:
            await self.hasher.verify_nothing(password)
            ok = False
        else:
            ok, new_hash = await self.hasher.verify(password, user.password_hash)
        if not ok or user is None:
            await self.limiter.allow(pair_limit, *pair_key)
            await self.limiter.allow(account_limit, *account_key)
            raise InvalidCredentials
        if new_hash is not None:
            await session.execute(
                update(User).where(User.id == user.id).values(password_hash=new_hash)
            )
        await self.known_addresses.remember(session, user.id, caller)
        return self._sign_in(session, user, caller=caller, user_agent=user_agent)

    async def refresh(self, session: AsyncSession, refresh_token: str) -> IssuedTokens:
        claims = self.refresh_tokens.read(refresh_token)
        user = await session.get(User, claims.user_id)
        if user is None or user.session_epoch != claims.session_epoch:
            # Every session of the account ended (a password reset) after this one began.
            raise InvalidRefreshToken
        next_token = await self.refresh_tokens.rotate(session, claims)
        await self._session_used(session, claims)
        return IssuedTokens(self._access(user, claims.family_id), next_token, claims.family_id)

    async def _session_used(self, session: AsyncSession, claims: RefreshClaims) -> None:
        """Note the refresh on the session's row; a login made by a code (verify) gets its
        row here, without the address and user agent it came from."""
        now = self.clock.now()
        await session.execute(
            conflict_insert(session, SignInSession)
            .values(
                id=claims.family_id,
                user_id=claims.user_id,
                session_epoch=claims.session_epoch,
                created_at=now,
                last_used_at=now,
                expires_at=claims.expires_at,
            )
            .on_conflict_do_update(index_elements=["id"], set_={"last_used_at": now})
        )

    async def logout(self, session: AsyncSession, refresh_token: str) -> None:
        try:
            claims = self.refresh_tokens.read(refresh_token)
        except InvalidRefreshToken:
            return  # not one of ours: there is no session to end
        # The family's row refers to its account; a database restored from before the account
        # has no session of it to end.
        if await session.get(User, claims.user_id) is not None:
            await self.refresh_tokens.end_family(session, claims)

    # -- password reset ------------------------------------------------------------------------

    def _reset_digest(self, token: str) -> str:
        return keyed_digest(self.code_key, "reset", token)

    async def request_password_reset(
        self, session: AsyncSession, email: EmailAddress, *, caller: str
    ) -> int:
        """Returns the seconds until another code can be asked for (for every address alike)."""
        await self.limiter.hit(self.limits["reset"], "password-reset", caller)
        user = await self._user(session, email)
        return await self._request_code(session, CodeRequestAction.RESET, email, user, caller)

    async def verify_password_reset(
        self, session: AsyncSession, email: EmailAddress, code: str, *, caller: str
    ) -> tuple[str, int]:
        await self.limiter.hit(self.limits["verify"], "verify", caller)
        user = await self._user(session, email)
        owner = await self.codes.redeem(session, CodePurpose.RESET_PASSWORD, email.canonical, code)
        if user is None or owner != user.id:
            raise InvalidCode  # the code outlived its account
        now = self.clock.now()
        if user.email_verified_at is None:
            # The code reached the inbox: that proves the address as well as verification does.
            await self._mark_verified(session, user)
            # The password on file was set before anyone proved the address, possibly by someone
            # else: it must not log in to the now verified account. The reset that follows sets
            # the owner's own.
            user.password_hash = await self.hasher.hash(secrets.token_urlsafe(32))
            user.registration_contested = False
        token = new_opaque_token()
        ttl = self.settings.reset_token_ttl_seconds
        session.add(
            PasswordResetToken(
                user_id=user.id,
                token_hash=self._reset_digest(token),
                expires_at=now + timedelta(seconds=ttl),
                created_at=now,
            )
        )
        return token, ttl

    async def complete_password_reset(
        self, session: AsyncSession, reset_token: str, new_password: str, *, caller: str
    ) -> None:
        now = self.clock.now()
        row = await session.scalar(
            select(PasswordResetToken).where(
                PasswordResetToken.token_hash == self._reset_digest(reset_token)
            )
        )
        if row is None or row.used_at is not None or row.expires_at <= now:
            raise InvalidResetToken
        user = await session.get(User, row.user_id)
        if user is None:
            raise InvalidResetToken
        failed = failed_rules(new_password, user.email_canonical.rsplit("@", 1)[0])
        if failed:
            raise WeakPassword(failed, field="new_password")
        password_hash = await self.hasher.hash(new_password)
        spent = cast(
            CursorResult[Any],
            await session.execute(
                update(PasswordResetToken)
                .where(PasswordResetToken.id == row.id, PasswordResetToken.used_at.is_(None))
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            ),
        )
        if spent.rowcount != 1:
            raise InvalidResetToken
        # Every other outstanding reset token of the account dies with this one.
        await session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        user.password_hash = password_hash
        user.registration_contested = False
        # Whoever knew the old password may have made sessions and API clients: all end.
        self._end_sessions(session, user)
        revoked_clients = await self._revoke_clients(session, user)
        # The mailbox answered, so this address is the owner's: a lock held on the account from
        # elsewhere no longer keeps them out. Addresses known before stay known (they only pass
        # the account-wide limit, and the owner's other devices keep working).
        await self.known_addresses.remember(session, user.id, caller)
        # Whoever held the account locked from elsewhere no longer keeps its owner out.
        await self.limiter.clear(
            self.limits["login_failures_account"], "login-failures", user.email_canonical
        )
        self._mail(
            session, emails.password_changed(user.email, revoked_clients, language=user.language)
        )

    # -- the account ---------------------------------------------------------------------------

    async def set_newsletter(self, session: AsyncSession, user: User, subscribed: bool) -> User:
        if user.newsletter != subscribed:
            user.newsletter = subscribed
            user.newsletter_since = self.clock.now() if subscribed else None
            self._account_changed(session, user)
        await session.flush()
        return user

    # -- partner API clients -------------------------------------------------------------------

    async def create_client(self, session: AsyncSession, user: User, name: str) -> NewClient:
        if not user.email_verified:
            raise AccountNotVerified
        secret = CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)
        client = ApiClient(
            client_id=CLIENT_ID_PREFIX + secrets.token_hex(10),
            secret_hash=secret_digest(secret),
            owner_id=user.id,
            name=name.strip(),
            created_at=self.clock.now(),
        )
        session.add(client)
        await session.flush()
        return NewClient(client, secret)

    async def list_clients(
        self, session: AsyncSession, user: User, *, limit: int, after: tuple[datetime, str] | None
    ) -> tuple[Sequence[ApiClient], bool]:
        query = select(ApiClient).where(
            ApiClient.owner_id == user.id, ApiClient.revoked_at.is_(None)
        )
        if after is not None:
            created_at, client_id = after
            query = query.where(
                or_(
                    ApiClient.created_at > created_at,
                    and_(ApiClient.created_at == created_at, ApiClient.client_id > client_id),
                )
            )
        rows = list(
            await session.scalars(
                query.order_by(ApiClient.created_at, ApiClient.client_id).limit(limit + 1)
            )
        )
        return rows[:limit], len(rows) > limit

    async def revoke_client(self, session: AsyncSession, user: User, client_id: str) -> None:
        client = await session.scalar(
            select(ApiClient).where(
                ApiClient.client_id == client_id,
                ApiClient.owner_id == user.id,
                ApiClient.revoked_at.is_(None),
            )
        )
        if client is None:
            raise ClientNotFound
        self._client_revoked(session, client)
        await session.flush()

    async def client_token(
        self,
        session: AsyncSession,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None,
        basic: bool,
    ) -> IssuedAccessToken:
        client = await session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
        presented = secret_digest(client_secret)
        stored = client.secret_hash if client is not None else _NO_SECRET_DIGEST
        if not digests_match(presented, stored) or client is None or client.revoked_at:
            # Failures have their own budget and never touch a right secret's, so nobody can
            # lock a partner out by sending its client id with wrong secrets.
            failures_key = ("token-failures", client_id)
            if not await self.limiter.allow(self.limits["token_failures"], *failures_key):
                raise await self.limiter.refusal(self.limits["token_failures"], *failures_key)
            raise InvalidClient(basic=basic)
        if scope is not None and set(scope.split()) - {MEDIA_DOWNLOAD}:
            raise InvalidScope
        await self.limiter.hit(self.limits["token_client"], "token", client_id)
        return self.issuer.for_client(client.client_id, client.name)
