"""A real headless Chromium for the dashboard tests: Debian's ``chromium`` (installed by the
Makefile's test set-up), driven by Playwright over its own protocol. Playwright never
downloads a browser here: it is handed the system one."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

#: Where screenshots are kept (git-ignored): what the page looked like when a test ran.
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError(
            "Debian's chromium is not installed: `make test` installs it"
            " (apt-get install -y chromium)"
        )
    return found


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium_path(),
            # root in a container: no user namespaces for the sandbox
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Tab:
    """A page with everything it said on the console and every request it made."""

    page: Page
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def settle(self, timeout: float = 60_000) -> None:
        """Wait until the view of the current URL is drawn and every answer is in."""
        query = urlsplit(self.page.url).query
        main = self.page.locator("main")
        expect(main).to_have_attribute("data-view", f"?{query}" if query else "", timeout=timeout)
        expect(main).to_have_attribute("aria-busy", "false", timeout=timeout)

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def tab(
    browser: Browser, viewport: dict[str, int] = DESKTOP, token: str | None = None
) -> Iterator[Tab]:
    """A fresh browser context; with ``token``, as if the user had given it in this tab."""
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    if token is not None:
        context.add_init_script(
            script=f"window.sessionStorage.setItem('tasklake.token', {json.dumps(token)})"
        )
    page = context.new_page()
    page.set_default_timeout(60_000)
    t = Tab(page)

    def console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            t.errors.append(f"{message.type}: {message.text} ({message.location})")

    page.on("console", console)
    page.on("pageerror", lambda error: t.errors.append(f"uncaught: {error}"))
    page.on("request", lambda request: t.requests.append(request.url))
    try:
        yield t
    finally:
        context.close()
