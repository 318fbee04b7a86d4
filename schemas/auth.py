"""Who is asking: the bearer-token rule every entry point applies (OTLP/HTTP, OTLP/gRPC, REST).

Clients send ``authorization: Bearer <secret>``. The config holds no secret: each ``[[tokens]]``
entry names a token, the hex SHA-256 of its secret, its scopes (``ingest``, ``read``, ``admin``)
and optionally the teams it is limited to. The flat ``auth_tokens`` list still works: each of
its secrets is a full-access token (every scope, every team).

Checking a secret hashes it once and compares the digest with **every** configured digest in
constant time (``hmac.compare_digest``), with no early exit, so neither the answer time nor
anything else tells which token came close. Secrets are never stored beyond start-up hashing
and never logged; a token is known by its name.

No token at all, or another scheme, is 401 (the client did not say who it is); a secret we
do not know, or a token without the scope a route needs, is 403. With no tokens configured,
auth is off and every request is ``ANONYMOUS`` (full access; the server then binds to
localhost only unless told otherwise, see ``service.exposure``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class Scope(StrEnum):
    """What a token may do. Scopes are independent: ``admin`` does not imply ``read``."""

    INGEST = "ingest"  # send spans, logs, signals, cost entries
    READ = "read"  # every read: API, dashboard, SQL
    ADMIN = "admin"  # settings, Prometheus metrics


ALL_SCOPES = frozenset(Scope)


@dataclass(frozen=True)
class Principal:
    """A caller the server knows: a token's name, its scopes, and its teams (None: all)."""

    name: str
    scopes: frozenset[Scope]
    teams: frozenset[str] | None = None

    def can(self, scope: Scope) -> bool:
        return scope in self.scopes

    @property
    def scoped(self) -> bool:
        """Whether this caller is limited to some teams."""
        return self.teams is not None

    def sees(self, team: str | None) -> bool:
        """Whether a row of ``team`` is this caller's (a row of no team: unscoped only)."""
        return self.teams is None or (team is not None and team in self.teams)

    def team_list(self) -> list[str] | None:
        """The teams as a sorted list for SQL parameters (None: every team)."""
        return None if self.teams is None else sorted(self.teams)


#: The caller when no token is configured: auth is off, everything is allowed.
ANONYMOUS = Principal("anonymous", ALL_SCOPES, None)


@dataclass(frozen=True)
class TokenSpec:
    """A ``[[tokens]]`` entry: ``sha256`` is the 32-byte digest of the secret."""

    name: str
    sha256: bytes = field(repr=False)
    scopes: frozenset[Scope]
    teams: frozenset[str] | None = None

    @property
    def principal(self) -> Principal:
        return Principal(self.name, self.scopes, self.teams)


def digest(secret: str) -> bytes:
    """The SHA-256 of a secret as sent (UTF-8), as ``printf %s "$SECRET" | sha256sum`` does."""
    return hashlib.sha256(secret.encode()).digest()


Status = Literal[200, 401, 403]


@dataclass(frozen=True)
class Verdict:
    """The answer to one request: 200 with the principal, or 401/403 and why."""

    status: Status
    message: str = ""
    principal: Principal | None = None


def bearer_secret(header: str | None) -> tuple[str | None, str]:
    """The secret of an ``authorization`` header, or None and why it is unusable."""
    if not header:
        return None, "missing bearer token (authorization: Bearer <token>)"
    scheme, _, secret = header.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        return None, "authorization must be 'Bearer <token>'"
    return secret, ""


class Authenticator:
    """The configured tokens; ``identify`` and ``authorize`` answer for one request."""

    def __init__(self, specs: Sequence[TokenSpec] = (), legacy: Iterable[str] = ()) -> None:
        entries = [(s.sha256, s.principal) for s in specs]
        for i, secret in enumerate(legacy):
            entries.append((digest(secret), Principal(f"auth_tokens[{i}]", ALL_SCOPES, None)))
        self._entries: tuple[tuple[bytes, Principal], ...] = tuple(entries)

    @property
    def enabled(self) -> bool:
        """Whether any token is configured (else auth is off)."""
        return bool(self._entries)

    @property
    def principals(self) -> list[Principal]:
        return [p for _, p in self._entries]

    def match(self, secret: str) -> Principal | None:
        """The token whose digest is the secret's. Every digest is compared, in constant
        time, whatever matched before: the loop has no early exit."""
        presented = digest(secret)
        found: Principal | None = None
        for expected, principal in self._entries:
            if hmac.compare_digest(presented, expected) and found is None:
                found = principal
        return found

    def identify(self, header: str | None) -> Verdict:
        """Who sent ``header`` (``ANONYMOUS`` when auth is off)."""
        if not self._entries:
            return Verdict(200, "", ANONYMOUS)
        secret, why = bearer_secret(header)
        if secret is None:
            return Verdict(401, why)
        principal = self.match(secret)
        if principal is None:
            return Verdict(403, "invalid bearer token")
        return Verdict(200, "", principal)

    def authorize(self, header: str | None, needs: Collection[Scope]) -> Verdict:
        """``identify``, then refuse (403) a token without every scope in ``needs``."""
        verdict = self.identify(header)
        principal = verdict.principal
        if principal is None:
            return verdict
        missing = sorted(str(s) for s in needs if not principal.can(Scope(s)))
        if missing:
            return Verdict(403, f"token '{principal.name}' lacks the {' and '.join(missing)} scope")
        return verdict
