"""Safe by default: with no token configured the server listens on this machine only and says
so; another host needs tokens or an explicit ``--insecure``. The settings line of the audit
log names each token, never its secret."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.settings import Settings, SettingsError
from service.audit import Audit
from service.exposure import check_exposure
from tests.service.access_env import LEGACY, TOKENS


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_no_tokens_on_this_machine_says_so(host: str) -> None:
    said = check_exposure(Settings(host=host))
    assert said is not None and f"listening on {host} only" in said
    assert "[[tokens]]" in said


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "tasklake.internal"])
def test_no_tokens_elsewhere_needs_insecure(host: str) -> None:
    with pytest.raises(SettingsError, match="insecure = true"):
        check_exposure(Settings(host=host))
    said = check_exposure(Settings(host=host, insecure=True))
    assert said is not None and said.startswith("INSECURE")
    assert check_exposure(Settings(host=host, tokens=TOKENS)) is None
    assert check_exposure(Settings(host=host, auth_tokens=(LEGACY,))) is None


def test_serve_refuses_to_start_exposed(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "service.cli", "serve", "--lake", str(tmp_path / "lake")]
    done = subprocess.run(
        [*cmd, "--host", "0.0.0.0"], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "no tokens are configured" in done.stderr and "--insecure" in done.stderr
    assert not (tmp_path / "lake").exists()  # refused before touching anything


def test_the_settings_line_names_tokens(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(tokens=TOKENS, auth_tokens=(LEGACY,), probe_networks=("10.0.0.0/8",))
    with caplog.at_level(logging.INFO, logger="tasklake.audit"):
        Audit(settings).settings_loaded(settings)
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "tasklake.audit"]
    assert line["event"] == "settings" and line["probe_networks"] == ["10.0.0.0/8"]
    tokens = {t["name"]: t for t in line["tokens"]}
    assert tokens["cx-reader"] == {"name": "cx-reader", "scopes": ["read"], "teams": ["cx"]}
    assert tokens["auth_tokens[0]"]["scopes"] == ["admin", "ingest", "read"]
    assert LEGACY not in caplog.text and "secret" not in caplog.text
    for spec in TOKENS:
        assert spec.sha256.hex() not in caplog.text
