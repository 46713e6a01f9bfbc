"""Auth tables: accounts, codes, refresh families, reset tokens, clients, addresses, outbox.

Nothing secret is stored in the clear: codes and reset tokens are keyed hashes (see `digests`),
passwords Argon2id hashes, client secrets SHA-256 digests (they carry 256 random bits). Refresh
tokens are not stored at all: they are signed, and a family's row holds only its position.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.database import UTCDateTime, UUIDPrimaryKey, make_metadata, utcnow


class Base(DeclarativeBase):
    metadata = make_metadata()


class CodePurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"
    CHANGE_EMAIL = "change_email"
    UNDO_EMAIL_CHANGE = "undo_email_change"


class User(UUIDPrimaryKey, Base):
    __tablename__ = "users"

    # As typed (domain lowercased); mail goes here.
    email: Mapped[str] = mapped_column(String(320))
    # Lowercased: what makes an address unique and what lookups use.
    email_canonical: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    newsletter: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # When the current subscription began (null while not subscribed): what the mailing tool
    # is told with each subscriber.
    newsletter_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Carried by every refresh token: raising it ends every session of the account at once.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Someone registered this unverified address again with another password: whoever redeems
    # the code must say which password the account gets (see `registration.verify_email`).
    registration_contested: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # `en` or `fr`: which catalogue the account's mail and pages use.
    language: Mapped[str] = mapped_column(String(8), default="en", server_default=text("'en'"))
    # An address change waiting for the code sent to the new address.
    pending_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    # The address before the last change, canonical, and until when its owner may undo the change
    # with the code mailed there (someone holding the session may have changed it).
    previous_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    previous_email_canonical: Mapped[str | None] = mapped_column(
        String(320), nullable=True, index=True
    )
    previous_email_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class OneTimeCode(UUIDPrimaryKey, Base):
    """The live 6-digit code of one purpose for one address: a new code overwrites the row.

    Addresses without an account get rows too, holding a code nobody was sent (`user_id` null):
    whatever is asked or guessed about an address does the same work whether or not it has an
    account (see `codes`).
    """

    __tablename__ = "one_time_codes"
    __table_args__ = (
        UniqueConstraint("address", "purpose", name="uq_one_time_codes_address_purpose"),
        Index("ix_one_time_codes_user_id", "user_id"),
    )

    # The canonical address the code was (or would have been) mailed to.
    address: Mapped[str] = mapped_column(String(320))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    )
    purpose: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CodeRequestAction(StrEnum):
    REGISTER = "register"
    RESEND = "resend"
    RESET = "reset"


class CodeRequest(UUIDPrimaryKey, Base):
    """A code was asked for an address: written by every register, resend and reset request alike.

    The sender answers it (`code_requests`): it issues the replacing code, real or unsent, and
    queues whatever mail the address gets. The request itself does the same work for every
    address, so its timing tells nobody whether the address has an account.
    """

    __tablename__ = "code_requests"
    __table_args__ = (Index("ix_code_requests_created_at", "created_at"),)

    address: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(16))
    # Within the per-address mail limits: only then does it replace the code and send mail.
    mail_allowed: Mapped[bool] = mapped_column(Boolean)
    # A registration with a password other than the one on file of an unverified account.
    contested: Mapped[bool] = mapped_column(Boolean, default=False)
    # The language the request asked in (`register`'s body, else `Accept-Language`): mail to an
    # address without an account is written in it; an account's own language wins.
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RefreshFamily(Base):
    """The refresh tokens of one login: a chain in which each token, once spent, names the next.

    Written by the family's first refresh, not by the login (see `refresh_tokens`).
    """

    __tablename__ = "refresh_families"
    __table_args__ = (Index("ix_refresh_families_user_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The generation whose token may be spent next: an older one presented is a replay.
    generation: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When the generation before `generation` was spent: presenting that token again shortly
    # after is a second tab refreshing at the same moment, not a replay (see `refresh_tokens`).
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SignInSession(Base):
    """What the account page shows of one login: its id is the refresh family's.

    Written by the login; the family's row (rotation, revocation) stays where it was. A session
    whose epoch is older than the account's ended with every other session. The client address
    is personal data kept for the owner to recognise a device: the maintenance loop clears it
    after `SESSION_ADDRESS_RETENTION_DAYS` (30).
    """

    __tablename__ = "sign_in_sessions"
    __table_args__ = (Index("ix_sign_in_sessions_user_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_epoch: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(256), nullable=True)


class PasswordResetToken(UUIDPrimaryKey, Base):
    __tablename__ = "password_reset_tokens"
    __table_args__ = (Index("ix_password_reset_tokens_user_id", "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiClient(UUIDPrimaryKey, Base):
    """A partner's credentials for the client-credentials grant."""

    __tablename__ = "api_clients"
    __table_args__ = (Index("ix_api_clients_owner_id", "owner_id"),)

    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class KnownLoginAddress(Base):
    """A client address that logged in to an account lately: the account-wide failure limit
    does not hold it, so a guesser elsewhere cannot keep the owner out.

    The address is kept only as an HMAC bound to the account (see `digests`).
    """

    __tablename__ = "known_login_addresses"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_success_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxMessage(UUIDPrimaryKey, Base):
    """An email written with the change that caused it, delivered later by the sender task.

    A message is pending until it is sent (`sent_at`) or given up (`dead_at`); either way its
    bodies, which may hold a code, are dropped then, and the row is purged after the retention
    period.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_due", "sent_at", "dead_at", "next_attempt_at"),
        Index("ix_outbox_messages_recipient", "recipient", "created_at"),
    )

    recipient: Mapped[str] = mapped_column(String(320))
    # Which email this is (see `emails.MailKind`): what an operator sees once the body is gone,
    # and what a retry composes again.
    kind: Mapped[str] = mapped_column(String(32), server_default=text("'other'"))
    subject: Mapped[str] = mapped_column(String(200))
    text_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    html_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Every delivery round that included the message, outages too.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Rounds in which the relay itself answered for this message: these end in dead mail.
    relay_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Which sender holds the message right now (until next_attempt_at, its lease, runs out).
    lease_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Put back by an operator: the age limit counts from here.
    retried_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
