"""``[[tokens]]`` in the config (a name, the SHA-256 of the secret, scopes, teams), the flat
``auth_tokens`` as full-access tokens, and the check of a presented secret: every configured
digest compared in constant time, none skipped."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from schemas import auth
from schemas.auth import ALL_SCOPES, Authenticator, Scope
from schemas.settings import SettingsError, load_settings


def _sha(secret: str) -> str:
    """What ``printf %s "$secret" | sha256sum`` prints."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _config(tmp_path: Path, text: str) -> Path:
    cfg = tmp_path / "tasklake.toml"
    cfg.write_text(text)
    return cfg


def test_tokens_from_the_config(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path,
        f"""
auth_tokens = ["old-flat-secret"]

[[tokens]]
name = "gateway"
sha256 = "{_sha("g-secret")}"
scopes = ["ingest"]

[[tokens]]
name = "support-dashboard"
sha256 = "{_sha("s-secret").upper()}"
scopes = ["read"]
teams = ["support"]
""",
    )
    s = load_settings(config_file=cfg, env={})
    who = s.authenticator
    gateway = who.identify("Bearer g-secret").principal
    assert gateway is not None and gateway.name == "gateway"
    assert gateway.scopes == {Scope.INGEST} and gateway.teams is None
    dashboard = who.identify("bearer  s-secret ").principal
    assert dashboard is not None and dashboard.teams == frozenset({"support"})
    assert dashboard.sees("support") and not dashboard.sees("billing")
    assert not dashboard.sees(None)  # a row of no team is nobody's team
    legacy = who.identify("Bearer old-flat-secret").principal
    assert legacy is not None and legacy.scopes == ALL_SCOPES and legacy.teams is None
    assert legacy.name == "auth_tokens[0]"  # what the audit log names it by
    assert "g-secret" not in repr(s) and _sha("g-secret") not in repr(s)


def test_who_is_refused_and_how(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path,
        f'[[tokens]]\nname = "r"\nsha256 = "{_sha("r-secret")}"\nscopes = ["read"]\n',
    )
    who = load_settings(config_file=cfg, env={}).authenticator
    assert who.identify(None).status == 401
    assert who.identify("Basic r-secret").status == 401
    assert who.identify("Bearer ").status == 401
    assert who.identify("Bearer r-secre").status == 403
    refused = who.authorize("Bearer r-secret", {Scope.ADMIN})
    assert refused.status == 403 and refused.message == "token 'r' lacks the admin scope"
    assert who.authorize("Bearer r-secret", {Scope.READ}).principal is not None
    # no tokens at all: auth off, everyone is the full-access anonymous caller
    assert Authenticator().identify(None).principal == auth.ANONYMOUS


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('name = "a"\nsecret = "x"\nsha256 = "{sha}"\nscopes = ["read"]', "never the secret"),
        ('name = "a"\nsha256 = "abc"\nscopes = ["read"]', "sha256: expected 64 hex digits"),
        ('name = "a"\nsha256 = "{sha}"\nscopes = ["write"]', "scopes: one or more of admin"),
        ('name = "a"\nsha256 = "{sha}"\nscopes = []', "tokens.a.scopes"),
        ('name = "a"\nsha256 = "{sha}"\nscopes = ["read"]\nteams = []', "at least one team"),
        ('name = "a b"\nsha256 = "{sha}"\nscopes = ["read"]', r"tokens\[0\].name"),
        ('name = "a"\nscopes = ["read"]', "'sha256' is required"),
    ],
)
def test_bad_tokens_name_the_entry(tmp_path: Path, entry: str, message: str) -> None:
    cfg = _config(tmp_path, "[[tokens]]\n" + entry.replace("{sha}", _sha("x")) + "\n")
    with pytest.raises(SettingsError, match=message):
        load_settings(config_file=cfg, env={})


def test_two_tokens_may_share_neither_name_nor_secret(tmp_path: Path) -> None:
    one = f'[[tokens]]\nname = "a"\nsha256 = "{_sha("x")}"\nscopes = ["read"]\n'
    same_name = one + f'[[tokens]]\nname = "a"\nsha256 = "{_sha("y")}"\nscopes = ["read"]\n'
    same_secret = one + f'[[tokens]]\nname = "b"\nsha256 = "{_sha("x")}"\nscopes = ["read"]\n'
    for text, message in ((same_name, "share a name"), (same_secret, "share a secret")):
        with pytest.raises(SettingsError, match=message):
            load_settings(config_file=_config(tmp_path, text), env={})


def test_every_digest_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """No timing is measured: the check is that each presented secret, whatever it is, goes
    through ``hmac.compare_digest`` against every configured digest, each of the same length
    (the secret is hashed first), with no early exit after a match."""
    specs = [
        auth.TokenSpec(f"t{i}", hashlib.sha256(f"s{i}".encode()).digest(), frozenset({Scope.READ}))
        for i in range(5)
    ]
    who = Authenticator(specs, legacy=["flat"])
    compared: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)  # what schemas.auth calls
    for secret in ("s0", "s4", "flat", "unknown", "x" * 10_000, ""):
        compared.clear()
        who.match(secret)
        assert compared == [(32, 32)] * 6, secret
    assert who.match("s0") is not None and who.match("s0").name == "t0"  # type: ignore[union-attr]
