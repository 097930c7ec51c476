"""The bearer token: created on first start, kept owner-only, checked on
every endpoint that reads jobs or does work.

The token file holds one line, the token (URL-safe text, at least 16
characters). ``load_or_create_token`` makes it with mode 0600 in a 0700
directory when it is missing and refuses one that others may read, the way
ssh refuses a private key with loose permissions.
"""
from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

MIN_TOKEN_CHARS = 16


class TokenFileError(ValueError):
    """The token file is unusable; the message says what to do."""


def load_or_create_token(path: Path) -> str:
    """The token in ``path``, creating the file (0600) on first use."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        token = secrets.token_urlsafe(32)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it meanwhile: read theirs
        else:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(token + "\n")
    if not path.is_file():
        raise TokenFileError(f"token file {path} is not a regular file")
    if os.name == "posix":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise TokenFileError(f"token file {path} can be read by other users (mode {mode:04o}); "
                                 f"run: chmod 600 {path}")
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < MIN_TOKEN_CHARS or any(char.isspace() for char in token):
        raise TokenFileError(f"token file {path} must hold one token of at least {MIN_TOKEN_CHARS} "
                             "characters without spaces; delete it to have a new one generated")
    return token


def bearer_token_dependency(expected: str | None):
    """A FastAPI dependency that answers 401 unless the request carries
    ``Authorization: Bearer <expected>``; with ``expected`` None (``--no-token``
    on loopback) it lets every request through."""
    from fastapi import Depends
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    from .errors import ApiError

    scheme = HTTPBearer(auto_error=False, scheme_name="token",
                        description="The service's token: the contents of its token file (docs/service.md).")

    def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(scheme)) -> None:
        if expected is None:
            return
        if credentials is None:
            raise ApiError(401, "missing_token",
                           "this endpoint needs the service's token: send 'Authorization: Bearer <token>'; "
                           "the token is in the token file on the machine that runs gan2x serve "
                           "(~/.config/gan2x/token by default)")
        if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
            raise ApiError(401, "invalid_token",
                           "the bearer token does not match this service's token file; copy the token again "
                           "(it changes only if the file is deleted)")

    return require_token
