"""Safe by default: without tokens, the server answers this machine only.

With no token configured every request has full access, so ``check_exposure`` lets the server
listen on a loopback address only (the default ``host`` is 127.0.0.1) and says so at start-up.
Listening elsewhere without tokens needs ``insecure = true`` (``--insecure``), and is logged
as such; with tokens any host is fine.
"""

from __future__ import annotations

import ipaddress
import logging

from schemas.settings import Settings, SettingsError

log = logging.getLogger("tasklake")


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings) -> str | None:
    """What to log about who can reach the server (None: tokens guard it); ``SettingsError``
    when it would serve another host without any token and without ``insecure``."""
    if settings.authenticator.enabled:
        return None
    host = settings.host
    if is_loopback(host):
        return (
            f"no tokens configured: listening on {host} only, where anyone on this machine"
            " reads and writes everything; configure [[tokens]] to serve other hosts"
        )
    if settings.insecure:
        return (
            f"INSECURE: no tokens configured and listening on {host}: anyone who reaches the"
            " port reads and writes everything"
        )
    raise SettingsError(
        f"host {host}: no tokens are configured, so anyone reaching it would read and write"
        " everything; configure [[tokens]] (README: Access), listen on 127.0.0.1, or set"
        " insecure = true (--insecure)"
    )
