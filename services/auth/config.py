"""Auth service settings: `AUTH_*`, plus the contract's shared SMTP and mail names."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.common.settings import CommaList, RefuseDevSecretsInProduction, ServiceSettings

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cores(*, cpu_max: Path = CGROUP_CPU_MAX) -> int:
    # Keyword-only, so pydantic can never take it for a default_factory's validated-data one.
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    # A CPU quota (compose `cpus:`, Kubernetes limits) leaves the affinity at every host core,
    # and memory-hard hashes beyond the quota's cores only contend, slowing every login.
    quota_cores = _cgroup_v2_quota_cores(cpu_max)
    return cores if quota_cores is None else min(cores, quota_cores)


def _cgroup_v2_quota_cores(cpu_max: Path) -> int | None:
    # Anything unreadable counts as no quota: the file is absent outside a cgroup v2 container,
    # and cgroup v1 (cpu.cfs_quota_us) is out of scope, so there AUTH_HASHING_THREADS is the way.
    try:
        quota, period = cpu_max.read_text().split()
        if quota == "max":
            return None
        quota_us, period_us = int(quota), int(period)
    except (OSError, ValueError):
        return None
    if quota_us <= 0 or period_us <= 0:
        return None
    # Round up: a 1.5-core quota keeps two threads busier than one.
    return math.ceil(quota_us / period_us)


class AuthSettings(RefuseDevSecretsInProduction, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")
    secret_fields: ClassVar[tuple[str, ...]] = ("code_hash_key",)

    database_url: str | None = None
    # PEM of the private key that signs access tokens; in development one is made under data_dir.
    signing_key: SecretStr | None = None
    signing_key_file: Path | None = None
    # Older public keys still published in the JWKS during a rotation.
    previous_public_key_files: CommaList = Field(default_factory=list)
    # Keys the HMAC of stored verification/reset codes and signs refresh tokens (changing it
    # ends every session).
    code_hash_key: SecretStr | None = None

    access_token_ttl_seconds: int = 900
    refresh_family_ttl_seconds: int = 30 * 24 * 3600
    # A spent refresh token presented again within this long returns the same successor (two
    # tabs refreshing at once) instead of revoking the family. Capped: the window is how long a
    # thief's replay goes unnoticed.
    refresh_reuse_grace_seconds: int = Field(10, ge=0, le=30)
    code_ttl_seconds: int = 1800
    code_max_attempts: int = 5
    reset_token_ttl_seconds: int = 900

    argon2_memory_cost: int = 19_456  # KiB: OWASP's Argon2id minimum (m=19 MiB, t=2, p=1)
    argon2_rounds: int = 2
    argon2_parallelism: int = 1
    # One hashing thread per usable core (affinity, capped by a cgroup v2 CPU quota): more only
    # contend or queue inside the pool, fewer leave cores idle during a login storm (the
    # threads run at a lower priority than the event loop).
    hashing_threads: int = Field(default_factory=usable_cores, ge=1)
    # How long a replica may answer `GET /me` from memory. Changes drop the copy at once (in
    # every replica through Redis when REDIS_URL is set), so this only bounds a missed one;
    # 0 reads the database every time.
    account_cache_seconds: float = Field(60.0, ge=0)

    smtp_host: str | None = Field(None, validation_alias=AliasChoices("SMTP_HOST"))
    smtp_port: int = Field(1025, validation_alias=AliasChoices("SMTP_PORT"))
    smtp_username: str | None = Field(None, validation_alias=AliasChoices("SMTP_USERNAME"))
    smtp_password: SecretStr | None = Field(None, validation_alias=AliasChoices("SMTP_PASSWORD"))
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        "none", validation_alias=AliasChoices("SMTP_TLS")
    )
    mail_from: str = Field(
        "NATO Multimedia <no-reply@natomedia.local>", validation_alias=AliasChoices("MAIL_FROM")
    )
    mail_sender_enabled: bool = Field(True, validation_alias=AliasChoices("AUTH_MAIL_SENDER"))
    mail_poll_seconds: float = 1.0
    mail_retry_base_seconds: float = 2.0
    mail_retry_max_seconds: float = 300.0
    mail_batch_size: int = 20
    # A claimed message is someone else's to retry only after this long (a crashed sender).
    mail_lease_seconds: float = 120.0
    smtp_timeout_seconds: float = 30.0
    # A message the relay turned away this many times (temporary replies, a dropped connection
    # mid-message) is dead. Rounds in which the relay could not be reached at all do not count:
    # an outage is bounded by the age limit instead.
    mail_max_attempts: int = Field(10, ge=1)
    # Mail not delivered within this long is dead, never sent late: a code in it has long
    # expired, and a notice that late misleads.
    mail_max_age_seconds: float = Field(24 * 3600, gt=0)
    # Sent and dead messages (bodies already dropped) are deleted this long after they settled.
    mail_retention_days: float = Field(30, gt=0)
    # Send non-ASCII addresses with SMTPUTF8 (RFC 6531). Off, `register` refuses such addresses
    # up front: a relay without SMTPUTF8 could never deliver their code. Off unless set, since
    # the relay is unknown; `natomedia dev` turns it on for its own sink, which offers it.
    mail_smtputf8: bool = Field(False, validation_alias=AliasChoices("MAIL_SMTPUTF8"))

    # Rate limits in the `limits` notation. Per client address unless named otherwise.
    register_rate_limit: str = "10/minute"
    verify_rate_limit: str = "30/minute"
    resend_rate_limit: str = "10/minute"
    password_reset_rate_limit: str = "10/minute"
    login_rate_limit: str = "30/minute"
    # Failed logins for one account from one address, and from everywhere: moving windows, so
    # an attacker can hold a victim's account for at most the window, never for good.
    login_failures_per_account_and_address: str = "5/5minutes"
    login_failures_per_account: str = "50/hour"
    # An address that logged in to the account within this many days is not held by the
    # account-wide limit (only by the per-account-and-address one): whoever hammers the account
    # from elsewhere cannot keep its owner out.
    known_login_address_days: int = Field(30, ge=1)
    # Mail about one address (codes, notices): silently skipped beyond these, whether or not an
    # account exists, so nobody can bomb an inbox through us.
    mail_per_address_limits: CommaList = Field(default_factory=lambda: ["1/minute", "5/hour"])
    token_rate_limit_per_client: str = "60/minute"
    token_failures_per_client: str = "10/minute"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or self.sqlite_url("auth")
