"""The public name of every operation in the merged API document.

Generated clients turn `operationId` into function and type names (`registerAccount()`,
`operations["createDownloadUrl"]`), so these names are part of the contract: add names, never
rename one. FastAPI's own ids (`register_v1_auth_register_post`) change whenever a handler is
renamed, which is why the gateway assigns them here, keyed on method and path.

Path parameters are written `{}`: a service may rename `{slug}` without breaking the table.
"""

from __future__ import annotations

import re

OPERATION_IDS: dict[tuple[str, str], str] = {
    # auth
    ("post", "/v1/auth/register"): "registerAccount",
    ("post", "/v1/auth/verify"): "verifyEmail",
    ("post", "/v1/auth/verify/resend"): "resendVerification",
    ("post", "/v1/auth/login"): "login",
    ("post", "/v1/auth/token/refresh"): "refreshToken",
    ("post", "/v1/auth/logout"): "logout",
    ("post", "/v1/auth/password-reset"): "requestPasswordReset",
    ("post", "/v1/auth/password-reset/verify"): "verifyPasswordReset",
    ("post", "/v1/auth/password-reset/complete"): "completePasswordReset",
    ("get", "/v1/auth/me"): "getMe",
    ("put", "/v1/auth/me/newsletter"): "setNewsletter",
    ("post", "/v1/auth/clients"): "createClient",
    ("get", "/v1/auth/clients"): "listClients",
    ("delete", "/v1/auth/clients/{}"): "deleteClient",
    ("post", "/v1/auth/token"): "issueClientToken",
    ("get", "/.well-known/jwks.json"): "getJwks",
    ("put", "/v1/auth/me/password"): "changePassword",
    ("post", "/v1/auth/logout-all"): "logoutAll",
    ("get", "/v1/auth/sessions"): "listSessions",
    ("delete", "/v1/auth/sessions/{}"): "deleteSession",
    ("post", "/v1/auth/me/email"): "changeEmail",
    ("post", "/v1/auth/me/email/verify"): "verifyEmailChange",
    ("post", "/v1/auth/me/email/undo"): "undoEmailChange",
    ("delete", "/v1/auth/me"): "deleteAccount",
    ("get", "/v1/auth/me/export"): "exportAccount",
    ("patch", "/v1/auth/me"): "updateAccount",
    # media
    ("get", "/v1/media/videos"): "listVideos",
    ("get", "/v1/media/videos/{}"): "getVideo",
    ("post", "/v1/media/videos/{}/renditions/{}/download-url"): "createDownloadUrl",
    ("get", "/v1/media/videos/{}/thumbnail.jpg"): "getVideoThumbnail",
    ("get", "/v1/media/downloads/{}/{}"): "downloadFile",
    ("head", "/v1/media/downloads/{}/{}"): "headDownloadFile",
    ("get", "/v1/media/me/downloads"): "listMyDownloads",
    ("patch", "/v1/media/videos/{}"): "updateVideo",
    ("post", "/v1/media/videos/{}/withdraw"): "withdrawVideo",
    ("post", "/v1/media/videos/{}/restore"): "restoreVideo",
    ("delete", "/v1/media/videos/{}/renditions/{}"): "deleteRendition",
    ("get", "/v1/media/videos/{}/downloads"): "listVideoDownloads",
    # news
    ("get", "/v1/news/articles"): "listArticles",
    ("get", "/v1/news/articles/{}"): "getArticle",
    ("get", "/v1/news/feed.json"): "getJsonFeed",
    ("get", "/v1/news/feed.atom"): "getAtomFeed",
    ("post", "/v1/news/articles"): "createArticle",
    ("patch", "/v1/news/articles/{}"): "updateArticle",
    ("delete", "/v1/news/articles/{}"): "deleteArticle",
    ("post", "/v1/news/articles/{}/publish"): "publishArticle",
    # health, through the gateway
    ("get", "/v1/auth/healthz"): "getAuthHealth",
    ("get", "/v1/auth/readyz"): "getAuthReadiness",
    ("get", "/v1/media/healthz"): "getMediaHealth",
    ("get", "/v1/media/readyz"): "getMediaReadiness",
    ("get", "/v1/news/healthz"): "getNewsHealth",
    ("get", "/v1/news/readyz"): "getNewsReadiness",
}

# Operations that accept a partner's client-credentials token as well as an account's.
CLIENT_CREDENTIALS_SCOPES: dict[str, list[str]] = {"createDownloadUrl": ["media:download"]}

# Operations a partner calls with its client id and secret (HTTP Basic, or in the form body).
CLIENT_SECRET_OPERATIONS = frozenset({"issueClientToken"})

# Roles an account's token must carry (as scopes) beyond being valid.
BEARER_ROLES: dict[str, list[str]] = {
    name: ["editor"]
    for name in (
        "createArticle",
        "updateArticle",
        "deleteArticle",
        "publishArticle",
        "updateVideo",
        "withdrawVideo",
        "restoreVideo",
        "deleteRendition",
        "listVideoDownloads",
    )
}

_PARAMETER = re.compile(r"\{[^}]*\}")


def path_shape(path: str) -> str:
    return _PARAMETER.sub("{}", path)


def operation_id(method: str, path: str) -> str | None:
    return OPERATION_IDS.get((method.lower(), path_shape(path)))
