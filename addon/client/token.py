"""Where the bearer token comes from: the preferences, or, for a backend on
this machine, the token file the service wrote (docs/service.md, "The token").
"""
from __future__ import annotations

import ipaddress
import os
import shlex
from pathlib import Path
from urllib.parse import urlsplit


def default_token_file() -> Path:
    """The service's default token file: ``$GAN2X_TOKEN_FILE``, else
    ``$XDG_CONFIG_HOME/gan2x/token``, else ``~/.config/gan2x/token``. Mirrors
    ``gan2x.service.config.default_token_file`` (a test checks they agree)."""
    if os.environ.get("GAN2X_TOKEN_FILE"):
        return Path(os.environ["GAN2X_TOKEN_FILE"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "gan2x" / "token"


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is ``localhost`` or a loopback address."""
    host = (urlsplit(url.strip()).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_file_of_command(command: str) -> Path | None:
    """The ``--token-file`` a local backend command names, if any."""
    try:
        arguments = shlex.split(command)
    except ValueError:
        return None
    for index, argument in enumerate(arguments):
        if argument == "--token-file" and index + 1 < len(arguments):
            return Path(arguments[index + 1]).expanduser()
        if argument.startswith("--token-file="):
            return Path(argument.split("=", 1)[1]).expanduser()
    return None


class TokenError(Exception):
    """No usable token; the message says where it was looked for."""


def resolve_token(url: str, token: str = "", local_command: str = "") -> tuple[str | None, str]:
    """The token to send to ``url`` and where it came from.

    A token typed in the preferences wins. Otherwise, for a loopback URL, the
    token file of the local backend (the one its command names with
    ``--token-file``, else the service's default) is read; a missing file
    gives ``None`` (a service started with ``--no-token`` needs none, and one
    that needs it answers 401 with a message). A remote URL without a token
    gives ``None`` too."""
    token = token.strip()
    if token:
        return token, "preferences"
    if not is_loopback_url(url):
        return None, "none (set the token in the add-on's preferences for a remote backend)"
    path = token_file_of_command(local_command) or default_token_file()
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None, "none ({} does not exist yet; the backend writes it on its first start)".format(path)
    except OSError as error:
        raise TokenError("cannot read the backend's token file {}: {}".format(path, error.strerror or error))
    return (text or None), str(path)
