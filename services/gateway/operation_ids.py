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
    # media
    ("get", "/v1/media/videos"): "listVideos",
    ("get", "/v1/media/videos/{}"): "getVideo",
    ("post", "/v1/media/videos/{}/renditions/{}/download-url"): "createDownloadUrl",
    ("get", "/v1/media/videos/{}/thumbnail.jpg"): "getVideoThumbnail",
    ("get", "/v1/media/downloads/{}/{}"): "downloadFile",
    ("head", "/v1/media/downloads/{}/{}"): "headDownloadFile",
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

_PARAMETER = re.compile(r"\{[^}]*\}")


def path_shape(path: str) -> str:
    return _PARAMETER.sub("{}", path)


def operation_id(method: str, path: str) -> str | None:
    return OPERATION_IDS.get((method.lower(), path_shape(path)))
