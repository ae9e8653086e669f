"""The browser agent desktop (/sim/desktop/) in Debian's Chromium, driven by Playwright.

The page runs the official CometD JavaScript library (node_modules/cometd) in a
real browser, so its traffic is a browser's: fetch() with the cookie jar, XHR
long-polls or a WebSocket upgrade, its own batching.

* static files: the page, desktop.js/css and the vendored cometd modules are
  served, nothing else is;
* end to end, over long-polling and over websocket: the page is loaded THROUGH
  ``gwsreplay record`` (the capture proxy) in front of ``gwsreplay sim``; an agent
  logs in, goes Ready, takes an injected inbound call (Answer, Hold, Retrieve,
  Hang up), does After Call Work, Not Ready and logs out. Then the capture holds
  every operation, correlated with the notification that completed it, the
  notifications in the order the page saw them, and exactly as many REST
  exchanges and Bayeux messages as the simulator counted (/sim/v1/stats);
* the same page pointed at ``gwsreplay mock`` serving that capture sees the same
  notification sequence (skipped while ``gwsreplay mock`` does not exist).

Screenshots go to test-artifacts/browser/ (git-ignored). No browser is ever
downloaded: Chromium is /usr/bin/chromium (``make chromium``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import duckdb
import pytest

from conftest import ROOT, free_port, gwsreplay_command

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed (pip install playwright)")

CHROMIUM = os.environ.get("GWSREPLAY_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
COMETD_JS = ROOT / "node_modules" / "cometd" / "cometd.js"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (run `make chromium`)"),
    pytest.mark.skipif(not COMETD_JS.exists(), reason="node_modules/cometd is missing (run `make node`)"),
    pytest.mark.timeout(180),
]

WAIT_MS = 15_000
AGENT, PHONE = "agent1", "7001"
CALLER = "5551234"

# What the page does, in order, and what the capture must tie each operation to:
# operationName -> (messageType, state of the resource in that message). None: no notification
# is expected (EndContactCenterSession emits nothing in GWS 8.5+).
SCENARIO_OPERATIONS: list[tuple[str, tuple[str, str] | None]] = [
    ("StartContactCenterSession", ("DeviceStateChangeMessage", "NotReady")),
    ("Ready", ("DeviceStateChangeMessage", "Ready")),
    ("Answer", ("CallStateChangeMessage", "Established")),
    ("Hold", ("CallStateChangeMessage", "Held")),
    ("Retrieve", ("CallStateChangeMessage", "Established")),
    ("Hangup", ("CallStateChangeMessage", "Released")),
    # GWS reports After Call Work as userState.state NotReady + workMode AfterCallWork.
    ("AfterCallWork", ("DeviceStateChangeMessage", "NotReady")),
    ("NotReady", ("DeviceStateChangeMessage", "NotReady")),
    ("EndContactCenterSession", None),
]

# The notifications the page must see for that scenario: (channel, messageType, state[/workMode]).
SCENARIO_NOTIFICATIONS = [
    ("/v2/me/devices", "DeviceStateChangeMessage", "NotReady"),
    ("/v2/me/devices", "DeviceStateChangeMessage", "Ready"),
    ("/v2/me/calls", "CallStateChangeMessage", "Ringing"),
    ("/v2/me/calls", "CallStateChangeMessage", "Established"),
    ("/v2/me/calls", "CallStateChangeMessage", "Held"),
    ("/v2/me/calls", "CallStateChangeMessage", "Established"),
    ("/v2/me/calls", "CallStateChangeMessage", "Released"),
    ("/v2/me/devices", "DeviceStateChangeMessage", "NotReady/AfterCallWork"),
    ("/v2/me/devices", "DeviceStateChangeMessage", "NotReady"),
]


def notification_key(channel: str, data: dict) -> tuple[str, str | None, str | None]:
    """(channel, messageType, state) of a notification; ids left out so runs compare."""
    kind = data.get("messageType")
    state = None
    if kind == "CallStateChangeMessage":
        state = (data.get("call") or {}).get("state")
    elif kind == "DeviceStateChangeMessage":
        user_state = ((data.get("devices") or [{}])[0]).get("userState") or {}
        state = user_state.get("state")
        if user_state.get("workMode"):
            state = f"{state}/{user_state['workMode']}"
    elif kind == "ErrorMessage":
        state = data.get("errorMessage")
    return channel, kind, state


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield chromium
        finally:
            await chromium.close()


class RecordProxy:
    """``gwsreplay record`` in reverse-proxy mode in front of ``upstream``, stopped with SIGINT."""

    def __init__(self, upstream: str, db: Path) -> None:
        self.upstream, self.db = upstream, db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = db.with_suffix(".log")
        self.proc: subprocess.Popen | None = None

    async def start(self, timeout: float = 30) -> "RecordProxy":
        self.proc = subprocess.Popen(
            [*gwsreplay_command(), "record", "--upstream", self.upstream, "--listen-port", str(self.port),
             "--db", str(self.db), "--quiet", "--flush-ms", "100"],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, cwd=str(ROOT),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"gwsreplay record exited {self.proc.returncode}: {self.output()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return self
            except OSError:
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"gwsreplay record is not listening: {self.output()}") from None
                await asyncio.sleep(0.1)

    async def stop(self, timeout: float = 30) -> int:
        """SIGINT (flushes the capture), then the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout)
            except asyncio.TimeoutError:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
                raise AssertionError(f"gwsreplay record did not stop on SIGINT: {self.output()}") from None
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
async def record_proxy() -> AsyncIterator[Any]:
    started: list[RecordProxy] = []

    async def factory(upstream: str, db: Path) -> RecordProxy:
        proxy = await RecordProxy(upstream, db).start()
        started.append(proxy)
        return proxy

    yield factory
    for proxy in started:
        if proxy.proc and proxy.proc.poll() is None:
            proxy.proc.kill()
            proxy.proc.wait()


@pytest.fixture
async def static_desktop() -> AsyncIterator[str]:
    """Only the page's files (gwsreplay.sim.server.desktop.make_static_app) on a loopback origin of their own."""
    from aiohttp import web

    from gwsreplay.sim.server.desktop import make_static_app

    runner = web.AppRunner(make_static_app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def control(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, base + path, json=body) as resp:
            return resp.status, await resp.json(content_type=None)


# ----------------------------------------------------------------------------- the page


class DesktopPage:
    """One browser context (its own cookie jar) with the desktop loaded; screenshots on the way."""

    def __init__(self, page: Any, name: str) -> None:
        self.page, self.name = page, name
        self.errors: list[str] = []
        self.shots: list[Path] = []
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))

    @classmethod
    async def open(cls, browser: Any, url: str, name: str) -> "DesktopPage":
        context = await browser.new_context(viewport={"width": 1280, "height": 860})
        context.set_default_timeout(WAIT_MS)
        page = await context.new_page()
        desktop = cls(page, name)
        for old in ARTIFACTS.glob(f"{name}-*.png"):
            old.unlink()  # screenshots of an earlier run of this test
        await page.goto(url)
        await page.wait_for_selector("body[data-ready='true']")
        return desktop

    async def shot(self, step: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{len(self.shots):02d}-{step}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    async def login(self, transport: str, base_url: str | None = None, user: str = AGENT) -> None:
        p = self.page
        await p.fill("#login-user", user)
        await p.fill("#login-password", "password")
        if base_url:
            await p.fill("#login-base-url", base_url)
        await p.select_option("#login-transport", transport)
        await p.click("#login-button")
        try:
            await p.wait_for_selector("#desktop:not([hidden])")
        except playwright_api.Error:
            raise AssertionError(f"login failed: {await p.text_content('#login-error')!r} {self.errors}") from None
        await p.wait_for_selector("#connection-status[data-status='connected']")
        await p.wait_for_selector("#agent-state[data-agent-state='NotReady']")

    async def agent_state(self, button: str, expected: str) -> None:
        await self.page.click(f"#{button}")
        await self.page.wait_for_selector(f"#agent-state[data-agent-state='{expected}']")

    async def call_operation(self, operation: str, expected_state: str) -> None:
        await self.page.click(f"li.call:not(.released) button[data-op='{operation}']")
        await self.page.wait_for_selector(f"li.call[data-state='{expected_state}']")

    async def logout(self) -> None:
        await self.page.click("#btn-logout")
        await self.page.wait_for_selector("#login-panel:not([hidden])")
        await self.page.wait_for_selector("#connection-status[data-status='disconnected']")
        error = (await self.page.text_content("#login-error")) or ""
        assert not error.strip(), f"logout reported: {error}"

    async def notifications(self) -> list[dict]:
        return await self.page.evaluate("window.gwsDesktop.notifications")

    async def operations(self) -> list[dict]:
        return await self.page.evaluate("window.gwsDesktop.operations")

    async def close(self) -> None:
        await self.page.context.close()


async def run_scenario(desktop: DesktopPage, transport: str, ring, base_url: str | None = None) -> None:
    """Log in, Ready, a call rings, Answer, Hold, Retrieve, Hang up, ACW, Not Ready, log out."""
    p = desktop.page
    await desktop.shot("login-form")
    await desktop.login(transport, base_url)
    assert await p.text_content("#agent-phone") == PHONE
    assert await p.text_content("#agent-transport") == transport
    await desktop.agent_state("btn-ready", "Ready")
    assert await p.is_disabled("#btn-ready")

    await ring()
    await p.wait_for_selector("li.call[data-state='Ringing']")
    call_id = await p.get_attribute("li.call[data-state='Ringing']", "data-call-id")
    call = p.locator(f"li.call[data-call-id='{call_id}']")
    # Buttons follow the call's capabilities: only Answer while ringing.
    assert await call.locator("[data-op='Answer']").is_enabled()
    for op in ("Hold", "Retrieve", "Hangup", "SingleStepTransfer", "SingleStepConference"):
        assert await call.locator(f"[data-op='{op}']").is_disabled(), op
    assert CALLER in (await call.locator(".call-parties").text_content() or "")
    await desktop.shot("ringing")

    await desktop.call_operation("Answer", "Established")
    assert await call.locator("[data-op='Hold']").is_enabled()
    assert await call.locator("[data-op='Answer']").is_disabled()
    await desktop.call_operation("Hold", "Held")
    assert await call.locator("[data-op='Retrieve']").is_enabled()
    await desktop.shot("held")
    await desktop.call_operation("Retrieve", "Established")
    await desktop.call_operation("Hangup", "Released")
    assert await p.locator("li.call.released button[data-op]:enabled").count() == 0

    await desktop.agent_state("btn-acw", "AfterCallWork")
    assert await p.get_attribute("#agent-state", "data-work-mode") == "AfterCallWork"
    await desktop.agent_state("btn-not-ready", "NotReady")
    await desktop.shot("not-ready")
    await desktop.logout()
    await desktop.shot("logged-out")


# ----------------------------------------------------------------------------- tests


async def test_static_files_are_served(sim):
    async with aiohttp.ClientSession() as http:
        async def get(path: str) -> tuple[int, str, str]:
            async with http.get(sim.url + path, allow_redirects=False) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), await resp.text()

        status, _, _ = await get("/sim/desktop")
        assert status == 302
        status, ctype, body = await get("/sim/desktop/")
        assert (status, ctype) == (200, "text/html") and 'src="desktop.js"' in body
        for name, ctype_expected in (("desktop.js", "text/javascript"), ("desktop.css", "text/css"),
                                     ("vendor/cometd/cometd.js", "text/javascript"),
                                     ("vendor/cometd/Client.js", "text/javascript")):
            status, ctype, body = await get("/sim/desktop/" + name)
            assert (status, ctype) == (200, ctype_expected), name
        assert 'from "./vendor/cometd/cometd.js"' in (await get("/sim/desktop/desktop.js"))[2]
        # Nothing but the page's files: no Python sources, no escaping node_modules/cometd.
        for path in ("/sim/desktop/__init__.py", "/sim/desktop/vendor/cometd/package.json.bak",
                     "/sim/desktop/vendor/cometd/..%2Fws%2Findex.js", "/sim/desktop/vendor/cometd/.hidden.js"):
            assert (await get(path))[0] == 404, path
    # The page is not GWS REST: it must not show up in the simulator's REST count.
    assert (await sim.stats())["rest"]["total"] == 0


async def test_missing_cometd_is_a_clear_404(sim, monkeypatch, tmp_path):
    import gwsreplay.sim.server.desktop as desktop_assets

    monkeypatch.setattr(desktop_assets, "cometd_candidates", lambda: [tmp_path / "nowhere"])
    async with aiohttp.ClientSession() as http:
        async with http.get(sim.url + "/sim/desktop/vendor/cometd/cometd.js") as resp:
            text = await resp.text()
    assert resp.status == 404
    assert "make node" in text and str(tmp_path / "nowhere") in text


async def test_page_says_when_cometd_is_missing(sim, browser, monkeypatch, tmp_path):
    import gwsreplay.sim.server.desktop as desktop_assets

    monkeypatch.setattr(desktop_assets, "cometd_candidates", lambda: [tmp_path / "nowhere"])
    page = await browser.new_page()
    try:
        await page.goto(sim.url + "/sim/desktop/")
        await page.wait_for_selector("#load-error:not([hidden])", timeout=WAIT_MS)
        assert await page.get_attribute("body", "data-ready") is None
    finally:
        await page.close()


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
async def test_desktop_through_capture_proxy(transport, browser, sim_process, record_proxy, tmp_path):
    sim = await sim_process("--agents", "3", "--answer-delay", "0.05")
    db = tmp_path / f"browser-{transport}.duckdb"
    proxy = await record_proxy(sim.url, db)
    name = f"capture-{transport}"

    async def ring() -> None:
        status, body = await control(sim.url, "POST", "/sim/v1/calls", {"from": CALLER, "to": PHONE})
        assert status == 200 and body["statusCode"] == 0, body

    desktop = await DesktopPage.open(browser, proxy.url + "/sim/desktop/", name)
    try:
        # The base URL defaults to the page's origin: the proxy's.
        assert await desktop.page.input_value("#login-base-url") == proxy.url
        await run_scenario(desktop, transport, ring)
    except BaseException:
        await desktop.shot("failure")
        raise
    seen = await desktop.notifications()
    operations = await desktop.operations()
    errors = list(desktop.errors)
    await desktop.close()

    # What the page saw.
    assert [notification_key(n["channel"], n["data"]) for n in seen] == SCENARIO_NOTIFICATIONS
    assert [(o["operation"], o["status"], o["statusCode"]) for o in operations] == \
        [(op, 200, 0) for op, _ in SCENARIO_OPERATIONS]
    assert errors == [], errors

    stats = await control(sim.url, "GET", "/sim/v1/stats")
    assert stats[0] == 200
    stats = stats[1]
    assert await proxy.stop() == 0, proxy.output()
    assert "capture closed" in proxy.output() and "dropped 0" in proxy.output(), proxy.output()

    con = duckdb.connect(str(db), read_only=True)
    try:
        check_capture(con, stats, seen, transport)
    finally:
        con.close()


def check_capture(con, stats: dict, seen: list[dict], transport: str) -> None:
    """The capture holds the run completely and correlates every operation."""
    # Zero loss against the simulator's own counts.
    rest = con.execute("""
        SELECT count(*) FROM exchanges
        WHERE starts_with(path, '/api/v2') AND NOT starts_with(path, '/api/v2/notifications')
    """).fetchone()[0]
    assert rest == stats["rest"]["total"], (rest, stats)
    rest_by_user = dict(con.execute("""
        SELECT coalesce(user_name, ''), count(*) FROM exchanges
        WHERE starts_with(path, '/api/v2') AND NOT starts_with(path, '/api/v2/notifications')
        GROUP BY ALL
    """).fetchall())
    assert rest_by_user == stats["rest"]["by_user"], (rest_by_user, stats)
    by_direction = dict(con.execute(
        "SELECT direction, count(*) FROM bayeux_messages WHERE parse_error IS NULL GROUP BY ALL").fetchall())
    assert by_direction.get("s2c", 0) == stats["bayeux"]["delivered"]["total"], (by_direction, stats)
    assert by_direction.get("c2s", 0) == stats["bayeux"]["received"]["total"], (by_direction, stats)
    assert con.execute("SELECT count(*) FROM bayeux_messages WHERE parse_error IS NOT NULL").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM capture_errors").fetchone()[0] == 0

    # The right transport was used, end to end.
    transports = {row[0] for row in con.execute(
        "SELECT DISTINCT transport FROM bayeux_messages WHERE transport IS NOT NULL").fetchall()}
    assert transports == {transport}, transports
    if transport == "websocket":
        assert con.execute("SELECT count(*) FROM websocket_connections").fetchone()[0] >= 1

    # Every notification the page saw is in the capture, in the same order, for agent1.
    captured = con.execute("""
        SELECT channel, data, user_name FROM notifications ORDER BY ts, id
    """).fetchall()
    assert [notification_key(ch, json.loads(data)) for ch, data, _ in captured] == \
        [notification_key(n["channel"], n["data"]) for n in seen]
    assert {user for _, _, user in captured} == {AGENT}

    # Every operation, with the notification that completed it.
    rows = con.execute("""
        SELECT o.operation_name, o.user_name, o.status, o.status_code, o.outcome,
               m.message_type, m.resource_state, m.user_state, o.resource_id, m.call_id
        FROM operations o LEFT JOIN bayeux_messages m ON m.id = o.outcome_message_id
        ORDER BY o.requested_at, o.exchange_id
    """).fetchall()
    assert [r[0] for r in rows] == [op for op, _ in SCENARIO_OPERATIONS]
    problems = []
    for row, (op, expected) in zip(rows, SCENARIO_OPERATIONS):
        name, user, status, status_code, outcome, message_type, resource_state, _, resource_id, call_id = row
        if (user, status, status_code) != (AGENT, 200, 0):
            problems.append(f"{name}: {user} HTTP {status} statusCode {status_code}")
        if expected is None:
            continue
        if outcome != "completed" or (message_type, resource_state) != expected:
            problems.append(f"{name}: outcome {outcome} with {message_type} {resource_state}, expected {expected}")
        if message_type == "CallStateChangeMessage" and call_id != resource_id:
            problems.append(f"{name}: correlated with call {call_id}, not {resource_id}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
async def test_desktop_on_another_origin_than_gws(transport, browser, sim, static_desktop):
    """The page served from one origin, GWS on another: CORS preflights, credentialed XHR and
    fetch, the CSRF headers exposed to the page, a cross-origin WebSocket; and a second login."""
    desktop = await DesktopPage.open(browser, static_desktop + "/sim/desktop/", f"cors-{transport}")
    try:
        async def ring() -> None:
            status, body = await sim.inject_call(CALLER, PHONE)
            assert status == 200, body

        await run_scenario(desktop, transport, ring, base_url=sim.url)
        first = [notification_key(n["channel"], n["data"]) for n in await desktop.notifications()]
        assert first == SCENARIO_NOTIFICATIONS
        # Log in again in the same page: a new session, a new CometD client.
        await desktop.login(transport, base_url=sim.url)
        await desktop.agent_state("btn-ready", "Ready")
        await desktop.logout()
        assert desktop.errors == [], desktop.errors
    except BaseException:
        await desktop.shot("failure")
        raise
    finally:
        await desktop.close()
    stats = await sim.stats()
    assert stats["rest"]["by_user"].get("", 0) > 0  # the CORS preflights, answered without auth
    assert sim.front.internal_errors == 0


# ----------------------------------------------------------------------------- mock


def mock_help() -> tuple[str | None, str]:
    """(why the mock test cannot run, or None; the text of ``gwsreplay mock --help``)."""
    result = subprocess.run([*gwsreplay_command(), "mock", "--help"], capture_output=True, text=True,
                            cwd=str(ROOT), timeout=60)
    if result.returncode != 0:
        return ("`gwsreplay mock` does not exist yet (gwsreplay.replay in progress: no gwsreplay.replay/mock_cli.py); "
                f"`gwsreplay mock --help` exited {result.returncode}"), ""
    help_text = result.stdout
    if not _first_option(help_text, "--db", "--capture"):
        return "`gwsreplay mock --help` has neither --db nor --capture: adapt MockProcess to its options", help_text
    if not _first_option(help_text, "--port", "--listen-port"):
        return "`gwsreplay mock --help` has neither --port nor --listen-port: adapt MockProcess", help_text
    return None, help_text


def _first_option(help_text: str, *options: str) -> str | None:
    return next((o for o in options if re.search(rf"(^|[\s,\[]){re.escape(o)}\b", help_text)), None)


class MockProcess:
    """``gwsreplay mock --db CAPTURE --port N`` (or --capture / --listen-port, whichever it has)."""

    def __init__(self, db: Path, log: Path, help_text: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [*gwsreplay_command(), "mock", _first_option(help_text, "--db", "--capture"), str(db),
                   _first_option(help_text, "--port", "--listen-port"), str(self.port)]
        host = _first_option(help_text, "--host", "--listen-host")
        if host:
            command += [host, "127.0.0.1"]
        self.proc = subprocess.Popen(
            command, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=str(ROOT),
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    async def wait_listening(self, timeout: float = 30) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"gwsreplay mock exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"gwsreplay mock not listening: {self.log.read_text()}") from None
                await asyncio.sleep(0.1)

    def stop(self) -> int:
        """SIGINT, then the exit code (1 when a request matched nothing in the recording)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


async def page_origin_for(gws_url: str, static_origin: str) -> str:
    """Where to load the page to talk to ``gws_url``: from that server itself when it mounts
    the desktop (``gwsreplay.sim.server.desktop.add_routes``), so the page is same-origin as a desktop
    deployed next to GWS; else from the static server, cross-origin (GWS must then answer CORS).

    (Serving the files with Playwright's route interception does not work: Chromium then
    treats the page as public and refuses its requests to the loopback address.)
    """
    async with aiohttp.ClientSession() as http:
        async with http.get(gws_url + "/sim/desktop/") as resp:
            if resp.status == 200 and 'src="desktop.js"' in await resp.text():
                return gws_url
    return static_origin


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
async def test_desktop_against_mock_sees_the_same_notifications(transport, browser, sim_process, record_proxy,
                                                               static_desktop, tmp_path):
    reason, help_text = await asyncio.to_thread(mock_help)
    if reason:
        pytest.skip(reason)

    # 1. Record the scenario through the proxy.
    sim = await sim_process("--agents", "3", "--answer-delay", "0.05")
    db = tmp_path / "browser-for-mock.duckdb"
    proxy = await record_proxy(sim.url, db)

    async def ring_sim() -> None:
        status, body = await control(sim.url, "POST", "/sim/v1/calls", {"from": CALLER, "to": PHONE})
        assert status == 200, body

    recorded_page = await DesktopPage.open(browser, proxy.url + "/sim/desktop/", f"mock-{transport}-recording")
    await run_scenario(recorded_page, transport, ring_sim)
    recorded = [notification_key(n["channel"], n["data"]) for n in await recorded_page.notifications()]
    await recorded_page.close()
    assert await proxy.stop() == 0, proxy.output()
    await sim.stop()
    assert recorded == SCENARIO_NOTIFICATIONS

    # 2. The same page against the mock serving that capture (no simulator any more).
    mock = MockProcess(db, tmp_path / "mock.log", help_text)
    try:
        await mock.wait_listening()
        origin = await page_origin_for(mock.url, static_desktop)
        desktop = await DesktopPage.open(browser, origin + "/sim/desktop/", f"mock-{transport}-replay")

        async def ring_mock() -> None:
            pass  # the mock pushes the recorded, unsolicited Ringing notification itself

        try:
            await run_scenario(desktop, transport, ring_mock, base_url=mock.url)
        except BaseException:
            await desktop.shot("failure")
            raise
        replayed = [notification_key(n["channel"], n["data"]) for n in await desktop.notifications()]
        errors = list(desktop.errors)
        await desktop.close()
        assert replayed == recorded
        assert errors == [], errors
    finally:
        code = await asyncio.to_thread(mock.stop)
    assert code == 0, f"gwsreplay mock exited {code} (a request matched nothing?):\n{mock.output()}"
