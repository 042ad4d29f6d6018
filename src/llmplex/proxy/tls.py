"""``--ssl_keyfile_path`` / ``--ssl_certfile_path``: checked before binding, then handed to uvicorn.

A missing, unreadable or mismatched file is one line naming the file, not uvicorn's traceback
after the port is already taken.
"""

from __future__ import annotations

import ssl

from llmplex.exceptions import ConfigError

__all__ = ["check_tls"]


def check_tls(keyfile: str | None, certfile: str | None) -> dict[str, str]:
    """uvicorn's ``ssl_keyfile`` / ``ssl_certfile`` options ({} without TLS); any problem -> ``ConfigError``."""
    if not keyfile and not certfile:
        return {}
    if not (keyfile and certfile):
        given, missing = ("--ssl_keyfile_path", "--ssl_certfile_path")[:: 1 if keyfile else -1]
        raise ConfigError(f"TLS needs both files: {given} was given without {missing}")
    for flag, path in (("--ssl_keyfile_path", keyfile), ("--ssl_certfile_path", certfile)):
        try:
            with open(path, "rb") as file:
                file.read(1)
        except OSError as exc:
            raise ConfigError(f"{flag}: cannot read {path!r}: {exc.strerror or exc}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        raise ConfigError(f"TLS: {certfile!r} and {keyfile!r} are not a usable certificate and key: {reason}") from None
    return {"ssl_keyfile": keyfile, "ssl_certfile": certfile}
