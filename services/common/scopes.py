"""The scopes access tokens carry, named once for the services that grant and check them."""

from __future__ import annotations

from typing import Final

# An account's role: may write and publish news.
EDITOR: Final = "editor"
# A partner client's grant: may create signed download URLs.
MEDIA_DOWNLOAD: Final = "media:download"

CLIENT_SCOPES: Final[dict[str, str]] = {
    MEDIA_DOWNLOAD: "Create signed download URLs for video files",
}
