"""Who may do what in auth: the token aliases routes take."""

from __future__ import annotations

from typing import Annotated

from fastapi import Security

from services.auth.dependencies import current_account
from services.auth.models import User
from services.common.jwt import Principal
from services.common.security import client_basic, principal

# Any valid access token (an account's or a partner's).
CurrentPrincipal = Annotated[Principal, Security(principal)]
# The account an account token speaks for, loaded to be changed; an ended session is a 401.
CurrentAccount = Annotated[User, Security(current_account)]
# A partner's `Authorization: Basic` header, when it sends its credentials that way.
ClientBasicHeader = Annotated[str | None, Security(client_basic)]
