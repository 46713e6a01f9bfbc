"""The product end to end through nginx: a new user, a partner script, an unverified account."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from tests.access_log_support import logged, with_request_ids
from tests.e2e.conftest import E2E, PASSWORD, bearer, new_email, register_and_verify

pytestmark = [pytest.mark.e2e, pytest.mark.nginx, pytest.mark.postgres, pytest.mark.redis]

NEW_PASSWORD = "Lantern-Quay-9731?"


async def first_rendition(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    listing = await client.get("/v1/media/videos", params={"limit": 5})
    assert listing.status_code == 200, listing.text
    items = listing.json()["items"]
    assert items, "the seeded catalogue is empty"
    detail = await client.get(f"/v1/media/videos/{items[0]['id']}")
    assert detail.status_code == 200, detail.text
    video = detail.json()
    return video, video["renditions"][0]


async def download_url(
    client: httpx.AsyncClient, video: dict[str, Any], rendition: dict[str, Any], token: str
) -> httpx.Response:
    return await client.post(
        f"/v1/media/videos/{video['id']}/renditions/{rendition['id']}/download-url",
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_a_new_user_from_registration_to_a_new_password(
    e2e: E2E, gateway: httpx.AsyncClient
) -> None:
    email = new_email()

    registered = await gateway.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD, "newsletter": True}
    )
    assert registered.status_code == 202
    assert registered.json()["status"] == "verification_pending"

    (verification,) = await e2e.wait_for_mail(email)
    assert verification.code is not None
    assert verification.code in verification.html
    verified = await gateway.post(
        "/v1/auth/verify", json={"email": email, "code": verification.code}
    )
    assert verified.status_code == 200, verified.text
    tokens = verified.json()
    assert tokens["token_type"] == "Bearer"

    me = await gateway.get("/v1/auth/me", headers=bearer(tokens))
    assert me.status_code == 200
    assert me.json()["email"] == email
    assert me.json()["email_verified"] is True

    # Browse the catalogue and download a rendition through nginx, whole and in part.
    video, rendition = await first_rendition(gateway)
    granted = await download_url(gateway, video, rendition, str(tokens["access_token"]))
    assert granted.status_code == 200, granted.text
    url = granted.json()["url"]
    assert url.startswith(e2e.url + "/")

    whole = await gateway.get(url)
    assert whole.status_code == 200
    assert hashlib.sha256(whole.content).hexdigest() == rendition["sha256"]
    assert int(whole.headers["content-length"]) == rendition["size_bytes"]
    assert whole.headers.get_list("etag") == [f'"{rendition["sha256"]}"']
    assert whole.headers["content-disposition"].startswith("attachment")
    assert whole.headers["repr-digest"].startswith("sha-256=:")

    end = min(rendition["size_bytes"], 5000) - 1
    part = await gateway.get(url, headers={"Range": f"bytes=1000-{end}"})
    assert part.status_code == 206
    assert part.content == whole.content[1000 : end + 1]
    assert part.headers["content-range"] == f"bytes 1000-{end}/{rendition['size_bytes']}"

    tail = await gateway.get(url, headers={"Range": "bytes=-100"})
    assert tail.status_code == 206
    assert tail.content == whole.content[-100:]

    # The news: full-text search finds the Oslo article first.
    found = await gateway.get("/v1/news/articles", params={"q": "CFE"})
    assert found.status_code == 200
    articles = found.json()["items"]
    assert articles
    assert "oslo" in articles[0]["slug"]
    article = await gateway.get(f"/v1/news/articles/{articles[0]['slug']}")
    assert article.status_code == 200
    assert "CFE" in article.json()["body"]
    not_modified = await gateway.get(
        f"/v1/news/articles/{articles[0]['slug']}",
        headers={"If-None-Match": article.headers["etag"]},
    )
    assert not_modified.status_code == 304

    # Forgotten password: a code by mail, a reset token, a new password, old sessions gone.
    reset = await gateway.post("/v1/auth/password-reset", json={"email": email})
    assert reset.status_code == 202
    reset_mail = (await e2e.wait_for_mail(email, 2))[1]
    assert reset_mail.code is not None
    assert reset_mail.code != verification.code
    reset_token = await gateway.post(
        "/v1/auth/password-reset/verify", json={"email": email, "code": reset_mail.code}
    )
    assert reset_token.status_code == 200, reset_token.text
    completed = await gateway.post(
        "/v1/auth/password-reset/complete",
        json={"reset_token": reset_token.json()["reset_token"], "new_password": NEW_PASSWORD},
    )
    assert completed.status_code == 204, completed.text
    notice = (await e2e.wait_for_mail(email, 3))[2]
    assert notice.code is None

    old = await gateway.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert old.status_code == 401
    assert old.json()["code"] == "invalid_credentials"
    spent = await gateway.post(
        "/v1/auth/token/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert spent.status_code == 401
    new = await gateway.post("/v1/auth/login", json={"email": email, "password": NEW_PASSWORD})
    assert new.status_code == 200, new.text
    me_again = await gateway.get("/v1/auth/me", headers=bearer(new.json()))
    assert me_again.json()["email"] == email


async def test_nginx_sends_the_file_the_media_service_authorised(
    e2e: E2E, gateway: httpx.AsyncClient
) -> None:
    _, tokens = await register_and_verify(gateway, e2e)
    video, rendition = await first_rendition(gateway)
    granted = await download_url(gateway, video, rendition, str(tokens["access_token"]))
    url = granted.json()["url"]
    path = url.removeprefix(e2e.url)

    # Asked directly, the media service only names the file; behind nginx the bytes arrive.
    media = e2e.stack.replicas["media"][0]
    async with httpx.AsyncClient(base_url=media.url, trust_env=False) as direct:
        answer = await direct.get(path)
    assert answer.status_code == 200
    assert answer.headers["x-accel-redirect"].startswith("/_protected_media/")
    assert answer.content == b""

    head = await gateway.head(url, headers={"X-Request-ID": "journey-file-head"})
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == rendition["size_bytes"]
    assert "x-accel-redirect" not in head.headers

    tampered = url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
    refused = await gateway.get(tampered, headers={"X-Request-ID": "journey-file-tampered"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "invalid_signature"

    # The signed URL is a bearer capability: the gateway logs its path, never its query.
    query = httpx.URL(url).query.decode()
    log = e2e.stack.run_dir / "nginx-access.log"
    entries = await logged(log, with_request_ids({"journey-file-head", "journey-file-tampered"}))
    assert httpx.URL(url).path in {entry["path"] for entry in entries}
    assert query
    assert query not in log.read_text()


async def test_a_partner_script_downloads_with_client_credentials(
    e2e: E2E, gateway: httpx.AsyncClient
) -> None:
    _, tokens = await register_and_verify(gateway, e2e)
    created = await gateway.post(
        "/v1/auth/clients", json={"name": "Partner ingest"}, headers=bearer(tokens)
    )
    assert created.status_code == 201, created.text
    partner = created.json()

    issued = await gateway.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(partner["client_id"], partner["client_secret"]),
    )
    assert issued.status_code == 200, issued.text
    grant = issued.json()
    assert grant["token_type"] == "Bearer"
    assert "media:download" in grant["scope"].split()
    assert "refresh_token" not in grant

    video, rendition = await first_rendition(gateway)
    granted = await download_url(gateway, video, rendition, grant["access_token"])
    assert granted.status_code == 200, granted.text
    file = await gateway.get(granted.json()["url"])
    assert file.status_code == 200
    assert hashlib.sha256(file.content).hexdigest() == rendition["sha256"]

    wrong = await gateway.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(partner["client_id"], "not-the-secret"),
    )
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "invalid_client"


async def test_an_unverified_account_is_refused_a_download_url(
    e2e: E2E, gateway: httpx.AsyncClient
) -> None:
    email = new_email()
    registered = await gateway.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert registered.status_code == 202
    login = await gateway.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text

    video, rendition = await first_rendition(gateway)
    refused = await download_url(gateway, video, rendition, login.json()["access_token"])

    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "email_not_verified"
    anonymous = await gateway.post(
        f"/v1/media/videos/{video['id']}/renditions/{rendition['id']}/download-url"
    )
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "invalid_token"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
