"""Recording an HTTPS GWS: ``gwsreplay record`` in front of ``gwsreplay sim --tls``, end to end.

Every test runs both as child processes on 127.0.0.1, the simulator with its own private CA
(``--tls-dir`` in the test's folder) and mitmproxy with its own confdir, so nothing here
touches ~/.gwsreplay or ~/.mitmproxy. Trust is always real: clients verify certificates
against a CA file (aiohttp's SSL context, NODE_EXTRA_CA_CERTS, an NSS db for Chromium).

* reverse proxy to the HTTPS simulator, verified with ``--upstream-ca`` (the desktop reaches
  the proxy over https too) or explicitly not (``--ssl-insecure``); without either, the
  self-signed upstream is refused and the capture records the exchange with its TLS error;
* explicit proxy (``--mode regular``): the desktop's CONNECT tunnel, mitmproxy's CA trusted;
* ``--set NAME=VALUE`` reaches mitmproxy (http2=false changes what ALPN offers), and an
  unknown option or a bad value is one line and exit 2, with no capture file made;
* clients: the scripted Python agents, the official CometD JS client (long-polling and
  websocket; a proxy agent in explicit mode, the proxy's https URL in reverse mode) and
  Debian's Chromium (both modes), which speaks HTTP/2 to the proxy unless --set http2=false:
  its exchanges are recorded with http_version HTTP/2.0 (long-polls on h2 streams) exactly
  as HTTP/1.1 ones.

On every path the capture holds exactly the REST requests the simulator served and the
Bayeux messages it received and delivered (/sim/v1/stats), in total and per agent.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import duckdb
import pytest

from conftest import ROOT, free_port, gwsreplay_command
from gwsreplay.client.agents import AgentsConfig, run_agents
from gwsreplay.client.rest import ConnectOptions
from jsdesktop import JsDesktop, node_available
from test_capture_proxy import assert_counts_match, capture_counts
from test_js_cometd import log_in

pytestmark = pytest.mark.timeout(120)

PROXY_PRELOAD = ROOT / "tests" / "js" / "explicit-proxy.mjs"
CERTUTIL = shutil.which("certutil")


# ----------------------------------------------------------------------------- processes


class Recorder:
    """``gwsreplay record ARGS`` as a child process on a free port; SIGINT flushes the capture."""

    def __init__(self, db: Path, *args: str) -> None:
        self.db, self.args = db, list(args)
        self.port = free_port()
        self.confdir = db.parent / f"mitmproxy-{db.stem}"
        self.log = db.with_suffix(".log")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        """mitmproxy's CA, in this recorder's own confdir."""
        return self.confdir / "mitmproxy-ca-cert.pem"

    async def start(self, timeout: float = 30) -> "Recorder":
        self.proc = subprocess.Popen(
            [*gwsreplay_command(), "record", "--listen-port", str(self.port), "--db", str(self.db), "--quiet",
             "--flush-ms", "100", "--set", f"confdir={self.confdir}", *self.args],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, cwd=str(ROOT),
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        async with asyncio.timeout(timeout):
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"gwsreplay record exited {self.proc.returncode}: {self.output()}")
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                return self

    async def stop(self, timeout: float = 30) -> str:
        """SIGINT, wait, and the output; fails unless it exited 0 having dropped nothing."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout)
            except asyncio.TimeoutError:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        out = self.output()
        assert self.proc.returncode == 0, out
        assert "capture closed" in out and "dropped 0" in out, out
        return out

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
async def recorder() -> AsyncIterator[Any]:
    started: list[Recorder] = []

    async def factory(db: Path, *args: str) -> Recorder:
        proxy = Recorder(db, *args)
        started.append(proxy)
        return await proxy.start()

    yield factory
    for proxy in started:
        proxy.kill()


class TlsSim:
    """``gwsreplay sim --tls``: its https URL, the CA it printed, and its stats read over TLS."""

    def __init__(self, process: Any, tls_dir: Path) -> None:
        self.process, self.url = process, process.url
        self.ca = tls_dir / "ca.pem"

    async def stats(self) -> dict:
        async with ConnectOptions(ca_file=str(self.ca)).session() as http:
            async with http.get(self.url + "/sim/v1/stats") as resp:
                assert resp.status == 200
                return await resp.json()

    async def inject_call(self, from_number: str, to_number: str) -> None:
        async with ConnectOptions(ca_file=str(self.ca)).session() as http:
            async with http.post(self.url + "/sim/v1/calls", json={"from": from_number, "to": to_number}) as resp:
                assert resp.status == 200, await resp.text()


@pytest.fixture
async def tls_sim(sim_process, tmp_path) -> TlsSim:
    tls_dir = tmp_path / "sim-tls"
    process = await sim_process("--tls", "--tls-dir", str(tls_dir), "--agents", "4", "--answer-delay", "0.05")
    assert process.url.startswith("https://127.0.0.1:"), process.first_line
    sim = TlsSim(process, tls_dir)
    assert sim.ca.is_file()
    return sim


def assert_zero_loss(db: Path, stats: dict, *, agents: set[str]) -> dict:
    counts = capture_counts(db)
    assert set(counts["delivered"]) == agents, counts
    assert stats["rest"]["total"] > 0 and stats["bayeux"]["delivered"]["total"] > 0, stats
    assert_counts_match(counts, stats)
    return counts


def http_versions(db: Path, where: str = "TRUE") -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute(f"SELECT http_version, count(*) FROM exchanges WHERE {where} GROUP BY ALL"
                                ).fetchall())
    finally:
        con.close()


# ----------------------------------------------------------------------------- the Python agents


async def agents_through(target: str, connect: ConnectOptions, transport: str, agents: int = 3) -> None:
    summary = await run_agents(AgentsConfig(target=target, agents=agents, duration=3.0, seed=5, transport=transport,
                                            think_time=0.05, talk_time=0.1, connect=connect))
    assert summary.logged_in == agents and summary.operations > 5 and summary.failures == [], summary


async def test_reverse_to_https_upstream_verified_with_upstream_ca(tmp_path, tls_sim, recorder):
    """The desktop reaches the proxy over https (trusting mitmproxy's CA); mitmproxy verifies
    the simulator against the CA `sim --tls` printed. WebSocket transport (WSS both legs)."""
    db = tmp_path / "reverse-ca.duckdb"
    proxy = await recorder(db, "--upstream", tls_sim.url, "--upstream-ca", str(tls_sim.ca))
    assert f"desktops that reach this proxy with https:// must trust mitmproxy's CA {proxy.ca}" in proxy.output()
    target = f"https://127.0.0.1:{proxy.port}"
    await agents_through(target, ConnectOptions(ca_file=str(proxy.ca)), "websocket")
    stats = await tls_sim.stats()
    await proxy.stop()
    assert_zero_loss(db, stats, agents={"agent1", "agent2", "agent3"})
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT DISTINCT scheme FROM exchanges").fetchall() == [("https",)]
        assert con.execute("SELECT count(*) FROM websocket_connections").fetchone()[0] >= 3
    finally:
        con.close()


async def test_reverse_to_https_upstream_with_ssl_insecure(tmp_path, tls_sim, recorder):
    """--ssl-insecure: no verification of the self-signed upstream, by explicit choice.
    The desktop talks plain HTTP to the proxy; long-polling."""
    db = tmp_path / "reverse-insecure.duckdb"
    proxy = await recorder(db, "--upstream", tls_sim.url, "--ssl-insecure")
    await agents_through(proxy.url, ConnectOptions(), "long-polling")
    stats = await tls_sim.stats()
    await proxy.stop()
    assert_zero_loss(db, stats, agents={"agent1", "agent2", "agent3"})
    assert set(http_versions(db)) == {"HTTP/1.1"}


async def test_untrusted_upstream_is_refused_and_recorded(tmp_path, tls_sim, recorder):
    """Neither --upstream-ca nor --ssl-insecure: the simulator's private CA is not trusted, the
    desktop gets a 502 and the capture holds the exchange with the TLS error; nothing reached
    the simulator."""
    db = tmp_path / "refused.duckdb"
    proxy = await recorder(db, "--upstream", tls_sim.url)
    async with aiohttp.ClientSession() as http:
        async with http.get(proxy.url + "/api/v2/me", headers={"Authorization": "Basic YWdlbnQxOnBhc3N3b3Jk"}) as r:
            status, text = r.status, await r.text()
    assert status == 502, text
    assert "certificate" in text.lower(), text
    stats = await tls_sim.stats()
    await proxy.stop()
    assert stats["rest"]["total"] == 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT path, status, error FROM exchanges").fetchall()
    finally:
        con.close()
    assert len(rows) == 1, rows
    path, status, error = rows[0]
    assert path == "/api/v2/me" and status is None, rows
    assert error and "certificate" in error.lower(), error


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
async def test_explicit_proxy_python_agents(tmp_path, tls_sim, recorder, transport):
    """--mode regular: the agents CONNECT through the proxy to https://127.0.0.1:SIM and
    trust mitmproxy's CA; mitmproxy verifies the simulator with --upstream-ca."""
    db = tmp_path / f"regular-{transport}.duckdb"
    proxy = await recorder(db, "--mode", "regular", "--allow-host", tls_sim.url.split("//")[1],
                           "--upstream-ca", str(tls_sim.ca))
    out = proxy.output()
    assert str(proxy.ca) in out and 'certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n mitmproxy' in out, out
    assert f"NODE_EXTRA_CA_CERTS={proxy.ca}" in out, out
    await agents_through(tls_sim.url, ConnectOptions(ca_file=str(proxy.ca), proxy=proxy.url), transport)
    stats = await tls_sim.stats()
    await proxy.stop()
    assert_zero_loss(db, stats, agents={"agent1", "agent2", "agent3"})
    assert set(http_versions(db)) == {"HTTP/1.1"}


# ----------------------------------------------------------------------------- --set


def alpn_of(port: int, ca: Path, offer: list[str]) -> str | None:
    """The protocol the proxy picks from `offer` on a TLS connection to it (verified against ca)."""
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(offer)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.selected_alpn_protocol()


@pytest.mark.parametrize("http2", ["default", "false"])
async def test_set_passes_any_mitmproxy_option(tmp_path, tls_sim, recorder, http2):
    """--set http2=false reaches mitmproxy: a client offering h2 gets HTTP/1.1 instead of h2.
    A capture option set the same way (capture_max_body) is honoured too."""
    db = tmp_path / f"set-{http2}.duckdb"
    extra = [] if http2 == "default" else ["--set", f"http2={http2}"]
    proxy = await recorder(db, "--upstream", tls_sim.url, "--upstream-ca", str(tls_sim.ca),
                           "--set", "capture_max_body=8", *extra)
    selected = await asyncio.to_thread(alpn_of, proxy.port, proxy.ca, ["h2", "http/1.1"])
    assert selected == ("h2" if http2 == "default" else "http/1.1")
    async with ConnectOptions(ca_file=str(proxy.ca)).session() as http:
        async with http.get(f"https://127.0.0.1:{proxy.port}/api/v2/diagnostics/version") as resp:
            assert resp.status == 200
            assert len(await resp.read()) > 8
    await proxy.stop()
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT path, status, http_version, response_body_truncated FROM exchanges").fetchall()
    finally:
        con.close()
    assert rows == [("/api/v2/diagnostics/version", 200, "HTTP/1.1", True)], rows


@pytest.mark.parametrize("spec, message", [
    ("no_such_option=1", "Unknown option"),
    ("http2=maybe", "Boolean"),
    ("listen_port=eighty", "Not an integer"),
])
def test_set_refuses_unknown_options_and_bad_values(tmp_path, spec, message):
    db = tmp_path / "never.duckdb"
    result = subprocess.run([*gwsreplay_command(), "record", "--upstream", "https://127.0.0.1:9",
                             "--listen-port", str(free_port()), "--db", str(db), "--set", spec],
                            capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--set {spec}" in lines[0] and message in lines[0], result.stderr
    assert not db.exists() and not Path(str(db) + ".wal").exists()


def test_record_help_names_the_tls_options_and_the_listen_default():
    result = subprocess.run([*gwsreplay_command(), "record", "--help"], capture_output=True, text=True,
                            timeout=60, cwd=str(ROOT))
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for option in ("--upstream-ca FILE", "--ssl-insecure", "--set NAME=VALUE"):
        assert option in text, option
    assert "default: 127.0.0.1" in text
    both = subprocess.run([*gwsreplay_command(), "record", "--upstream", "https://127.0.0.1:9", "--db", "x.duckdb",
                           "--upstream-ca", "ca.pem", "--ssl-insecure"], capture_output=True, text=True, timeout=60,
                          cwd=str(ROOT))
    assert both.returncode == 2 and "not allowed with" in both.stderr, both.stderr
    missing = subprocess.run([*gwsreplay_command(), "record", "--upstream", "https://127.0.0.1:9", "--db", "x.duckdb",
                              "--upstream-ca", "no-such-ca.pem"], capture_output=True, text=True, timeout=60,
                             cwd=str(ROOT))
    assert missing.returncode == 2 and "--upstream-ca no-such-ca.pem: no such file" in missing.stderr, missing.stderr


# ----------------------------------------------------------------------------- gwsreplay sim --tls


async def get_verified(url: str, ca: Path | None) -> int:
    """GET url verifying its certificate against ca (None: the system's CAs)."""
    async with ConnectOptions(ca_file=str(ca) if ca else None).session() as http:
        async with http.get(url) as resp:
            return resp.status


async def test_sim_tls_keeps_its_ca_and_takes_a_given_certificate(tmp_path, sim_process):
    """--tls prints the CA to trust and keeps it across restarts (a fresh server certificate
    each time, verified against it); --tls-cert/--tls-key serve a given certificate; a client
    that trusts only the system CAs is refused."""
    tls_dir = tmp_path / "tls"
    first = await sim_process("--tls", "--tls-dir", str(tls_dir))
    ca = tls_dir / "ca.pem"
    ca_bytes, cert_bytes = ca.read_bytes(), (tls_dir / "server.pem").read_bytes()
    assert await get_verified(first.url + "/sim/v1/stats", ca) == 200
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await get_verified(first.url + "/sim/v1/stats", None)
    await first.stop()
    assert any(f"TLS: clients must trust the CA {ca}" in line for line in first.output), first.output
    assert (tls_dir / "ca-key.pem").stat().st_mode & 0o077 == 0

    second = await sim_process("--tls", "--tls-dir", str(tls_dir), "--host", "localhost")
    assert second.url.startswith("https://localhost:")
    assert ca.read_bytes() == ca_bytes and (tls_dir / "server.pem").read_bytes() != cert_bytes
    assert await get_verified(second.url + "/sim/v1/stats", ca) == 200
    await second.stop()

    given = tmp_path / "given"
    given.mkdir()
    for name in ("server.pem", "server-key.pem"):
        shutil.copy(tls_dir / name, given / name)
    third = await sim_process("--tls-cert", str(given / "server.pem"), "--tls-key", str(given / "server-key.pem"))
    assert await get_verified(third.url + "/api/v2/diagnostics/version", ca) == 200
    await third.stop()
    assert any("clients must trust its issuer" in line for line in third.output), third.output

    half = subprocess.run([*gwsreplay_command(), "sim", "--port", "0", "--tls-cert", str(given / "server.pem")],
                          capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert half.returncode == 2 and "--tls-cert and --tls-key go together" in half.stderr, half.stderr


# ----------------------------------------------------------------------------- the official CometD JS client


async def js_call(base_url: str, transport: str) -> None:
    """Two Node desktops (npm cometd) at base_url: log in, agent1 dials agent2, who answers and
    hangs up; CometD disconnect and end of session, with no failed meta message on the way."""
    async with JsDesktop(base_url, "agent1", transport=transport) as a1, \
               JsDesktop(base_url, "agent2", transport=transport) as a2:
        device1 = await log_in(a1)
        await log_in(a2)
        dial = await a1.rest("POST", f"/api/v2/me/devices/{device1}/calls",
                             {"operationName": "Dial", "destination": {"phoneNumber": "7002"}})
        assert dial["body"] == {"statusCode": 0}
        call2 = (await a2.notification("/v2/me/calls", call__state="Ringing"))["data"]["call"]["id"]
        answer = await a2.rest("POST", f"/api/v2/me/calls/{call2}", {"operationName": "Answer"})
        assert answer["body"] == {"statusCode": 0}
        await a2.notification("/v2/me/calls", call__state="Established", call__id=call2)
        hangup = await a2.rest("POST", f"/api/v2/me/calls/{call2}", {"operationName": "Hangup"})
        assert hangup["body"] == {"statusCode": 0}
        await a2.notification("/v2/me/calls", call__state="Released", call__id=call2)
        for desktop in (a1, a2):
            await desktop.disconnect()
            end = await desktop.rest("POST", "/api/v2/me", {"operationName": "EndContactCenterSession"})
            assert end["body"] == {"statusCode": 0}
            assert not [e for e in desktop.events if e["event"] in ("meta", "error") and not e.get("successful")]


def transports_and_schemes(db: Path) -> tuple[set[str], set[str]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        transports = {r[0] for r in con.execute("SELECT DISTINCT transport FROM bayeux_messages").fetchall()}
        schemes = {r[0] for r in con.execute("SELECT DISTINCT scheme FROM exchanges").fetchall()}
    finally:
        con.close()
    return transports, schemes


@pytest.mark.skipif(not node_available(), reason="node or node_modules/cometd missing (run make node)")
@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
async def test_explicit_proxy_official_js_client(tmp_path, tls_sim, recorder, monkeypatch, transport):
    """Two Node desktops (npm cometd) reach https://127.0.0.1:SIM through the explicit proxy:
    a CONNECT tunnel by https-proxy-agent, mitmproxy's CA in NODE_EXTRA_CA_CERTS."""
    db = tmp_path / f"js-{transport}.duckdb"
    proxy = await recorder(db, "--mode", "regular", "--allow-host", tls_sim.url.split("//")[1],
                           "--upstream-ca", str(tls_sim.ca))
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", str(proxy.ca))
    monkeypatch.setenv("GWSREPLAY_HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NODE_OPTIONS", f"--import={PROXY_PRELOAD.as_uri()}")
    await js_call(tls_sim.url, transport)
    stats = await tls_sim.stats()
    await proxy.stop()
    assert_zero_loss(db, stats, agents={"agent1", "agent2"})
    assert transports_and_schemes(db) == ({transport}, {"https"})


@pytest.mark.skipif(not node_available(), reason="node or node_modules/cometd missing (run make node)")
@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
async def test_reverse_proxy_official_js_client(tmp_path, tls_sim, recorder, monkeypatch, transport):
    """Reverse mode over TLS on both legs: the Node desktops' base URL is the proxy's https URL
    (no proxy agent), trusting only mitmproxy's CA from the confdir given with --set confdir=
    (NODE_EXTRA_CA_CERTS); mitmproxy verifies the simulator with --upstream-ca."""
    db = tmp_path / f"js-reverse-{transport}.duckdb"
    proxy = await recorder(db, "--upstream", tls_sim.url, "--upstream-ca", str(tls_sim.ca))
    assert proxy.ca.is_file() and proxy.ca.parent == proxy.confdir, proxy.ca
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", str(proxy.ca))
    monkeypatch.delenv("NODE_OPTIONS", raising=False)
    monkeypatch.delenv("GWSREPLAY_HTTPS_PROXY", raising=False)
    await js_call(f"https://127.0.0.1:{proxy.port}", transport)
    stats = await tls_sim.stats()
    await proxy.stop()
    assert_zero_loss(db, stats, agents={"agent1", "agent2"})
    assert transports_and_schemes(db) == ({transport}, {"https"})
    assert set(http_versions(db)) == {"HTTP/1.1"}


# ----------------------------------------------------------------------------- Chromium, HTTP/2


def nss_db(home: Path, ca: Path | None) -> Path:
    """$HOME/.pki/nssdb for Chromium, trusting `ca` for websites (None: an empty store)."""
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run([CERTUTIL, "-d", f"sql:{db}", "-N", "--empty-password"], check=True, capture_output=True)
    if ca is not None:
        subprocess.run([CERTUTIL, "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "mitmproxy", "-i", str(ca)],
                       check=True, capture_output=True)
    return db


# The browser's own background requests (updates, sign-in, autofill) go direct, not into the capture.
GOOGLE_BACKGROUND = ("*.google.com", "*.googleapis.com", "*.gstatic.com", "*.gvt1.com", "*.googleusercontent.com")


async def launch_chromium(pw: Any, home: Path, proxy: Recorder | None = None) -> Any:
    """Debian's Chromium with `home` as $HOME (its NSS db) and `proxy` (if any) as its explicit
    proxy; `<-loopback>` lifts Chromium's implicit bypass of 127.0.0.1."""
    from test_browser_desktop import CHROMIUM, CHROMIUM_ARGS

    bypass = ";".join(("<-loopback>", *GOOGLE_BACKGROUND))
    via = [f"--proxy-server={proxy.url}", f"--proxy-bypass-list={bypass}"] if proxy else []
    return await pw.chromium.launch(
        executable_path=CHROMIUM, timeout=60_000, env={**os.environ, "HOME": str(home)},
        args=[*CHROMIUM_ARGS, *via])


def chromium_or_skip() -> Any:
    """Playwright's async API, or a skip when Chromium, Playwright or the npm cometd is missing."""
    playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
    from test_browser_desktop import CHROMIUM, COMETD_JS

    if not Path(CHROMIUM).exists() or not COMETD_JS.exists():
        pytest.skip("no Chromium or node_modules/cometd (make chromium node)")
    return playwright_api


async def chromium_desktop(pw: Any, home: Path, page_url: str, tls_sim: TlsSim, transport: str,
                           proxy: Recorder | None = None) -> list[dict]:
    """The desktop page's whole scenario in a Chromium trusting what `home`'s NSS db holds;
    the notifications the page saw. The login form's base URL is the page's origin."""
    from test_browser_desktop import DesktopPage, run_scenario

    browser = await launch_chromium(pw, home, proxy)
    try:
        desktop = await DesktopPage.open(browser, page_url, f"tls-{home.name}-{transport}")
        try:
            assert await desktop.page.input_value("#login-base-url") == page_url.split("/sim/")[0]
            await run_scenario(desktop, transport, lambda: tls_sim.inject_call("5551234", "7001"))
        except BaseException:
            await desktop.shot("failure")
            raise
        seen = await desktop.notifications()
        assert desktop.errors == [], desktop.errors
        await desktop.close()
    finally:
        await browser.close()
    return seen


@pytest.mark.skipif(CERTUTIL is None, reason="no certutil (apt-get install libnss3-tools; `make chromium`)")
@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
async def test_explicit_proxy_chromium_http2(tmp_path, tls_sim, recorder, transport):
    """The browser desktop page, loaded from https://127.0.0.1:SIM through the explicit proxy by
    Chromium trusting mitmproxy's CA from an NSS db (a Chromium without it refuses the page).
    Chromium speaks HTTP/2 to the proxy: REST and long-polls are h2 streams in the capture
    (the WebSocket, as browsers open it, an HTTP/1.1 upgrade), and the counts still match."""
    playwright_api = chromium_or_skip()
    from test_browser_desktop import check_capture

    db = tmp_path / f"chromium-{transport}.duckdb"
    proxy = await recorder(db, "--mode", "regular", "--allow-host", tls_sim.url.split("//")[1],
                           "--upstream-ca", str(tls_sim.ca))
    page_url = tls_sim.url + "/sim/desktop/"
    async with playwright_api.async_playwright() as pw:
        untrusting = tmp_path / "home-untrusting"
        nss_db(untrusting, None)
        browser = await launch_chromium(pw, untrusting, proxy)
        try:
            page = await browser.new_page()
            with pytest.raises(playwright_api.Error, match="ERR_CERT_AUTHORITY_INVALID"):
                await page.goto(page_url)
        finally:
            await browser.close()

        trusting = tmp_path / "home"
        nss_db(trusting, proxy.ca)
        seen = await chromium_desktop(pw, trusting, page_url, tls_sim, transport, proxy)
    stats = await tls_sim.stats()
    await proxy.stop()
    con = duckdb.connect(str(db), read_only=True)
    try:
        check_capture(con, stats, seen, transport)
        versions = dict(con.execute("SELECT is_websocket, list(DISTINCT http_version) FROM exchanges "
                                    "GROUP BY ALL").fetchall())
        h2_polls = con.execute("SELECT count(*) FROM exchanges WHERE is_bayeux AND http_version = 'HTTP/2.0' "
                               "AND path LIKE '/api/v2/notifications%'").fetchone()[0]
        pseudo = con.execute("SELECT count(*) FROM exchanges WHERE request_headers::VARCHAR LIKE '%[\":%' "
                             "OR response_headers::VARCHAR LIKE '%[\":%'").fetchone()[0]
        hosts = con.execute("SELECT DISTINCT host, port FROM exchanges").fetchall()
        held = con.execute("SELECT count(*) FROM bayeux_messages WHERE channel = '/meta/connect' "
                           "AND direction = 's2c' AND transport = 'long-polling'").fetchone()[0]
    finally:
        con.close()
    assert versions[False] == ["HTTP/2.0"], versions
    # h2 pseudo-headers are mitmproxy's method/scheme/authority/path, not stored headers
    assert pseudo == 0 and hosts == [("127.0.0.1", int(tls_sim.url.rsplit(":", 1)[1]))], hosts
    if transport == "long-polling":
        assert h2_polls > 3 and held > 3, (h2_polls, held)
    else:
        assert versions[True] == ["HTTP/1.1"], versions


@pytest.mark.skipif(CERTUTIL is None, reason="no certutil (apt-get install libnss3-tools; `make chromium`)")
@pytest.mark.parametrize("transport, http2", [("long-polling", None), ("websocket", None),
                                              ("long-polling", "false"), ("websocket", "false")])
async def test_reverse_proxy_chromium(tmp_path, tls_sim, recorder, transport, http2):
    """Reverse mode over TLS on both legs: Chromium loads the desktop page from the proxy's own
    https URL (no browser proxy), trusting mitmproxy's CA (from the --set confdir) in an NSS db;
    mitmproxy verifies the simulator with --upstream-ca. Chromium speaks HTTP/2 to the proxy
    unless `--set http2=false` is passed through, and then everything is HTTP/1.1."""
    playwright_api = chromium_or_skip()
    from test_browser_desktop import check_capture

    db = tmp_path / f"chromium-reverse-{transport}-{http2}.duckdb"
    extra = ["--set", f"http2={http2}"] if http2 else []
    proxy = await recorder(db, "--upstream", tls_sim.url, "--upstream-ca", str(tls_sim.ca), *extra)
    home = tmp_path / "home-reverse"
    nss_db(home, proxy.ca)
    async with playwright_api.async_playwright() as pw:
        seen = await chromium_desktop(pw, home, f"https://127.0.0.1:{proxy.port}/sim/desktop/", tls_sim, transport)
    stats = await tls_sim.stats()
    await proxy.stop()
    assert_zero_loss(db, stats, agents={"agent1"})
    con = duckdb.connect(str(db), read_only=True)
    try:
        check_capture(con, stats, seen, transport)
        versions = dict(con.execute("SELECT is_websocket, list(DISTINCT http_version) FROM exchanges "
                                    "GROUP BY ALL").fetchall())
        h2_polls = con.execute("SELECT count(*) FROM exchanges WHERE is_bayeux AND http_version = 'HTTP/2.0' "
                               "AND path LIKE '/api/v2/notifications%'").fetchone()[0]
        schemes = con.execute("SELECT DISTINCT scheme FROM exchanges").fetchall()
    finally:
        con.close()
    assert schemes == [("https",)], schemes
    assert versions[False] == ["HTTP/1.1" if http2 else "HTTP/2.0"], versions
    if transport == "long-polling":
        assert (h2_polls > 3) == (http2 is None), h2_polls
    else:
        assert versions[True] == ["HTTP/1.1"], versions
