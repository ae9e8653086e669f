"""`gwsreplay record --mode regular` is not an open forward proxy: only --allow-host hosts are proxied.

End to end: an explicit proxy allowed to reach one upstream forwards and records its
requests; a request or a CONNECT to another host gets a 403 naming it, reaches nothing,
is not an exchange of the capture, and is counted (final line, capture_errors). Without
an allow-list, regular mode refuses to start in one line.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request

import duckdb
import pytest

from conftest import gwsreplay_command
from gwsreplay.proxy.allow_hosts import AllowedHost, AllowList, parse_entry
from test_capture_proxy import Upstream, free_port, wait_port
from test_cli_mistakes import files, one_line, run


class Listener:
    """A TCP server that only counts the connections it accepts (the host that must not be reached)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def via_proxy(proxy_port: int, url: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{proxy_port}"}))
    try:
        with opener.open(url, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def connect_status(proxy_port: int, target: str) -> str:
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=20) as s:
        s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode()


def test_only_allowed_hosts_are_proxied(tmp_path):
    db = tmp_path / "regular.duckdb"
    port = free_port()
    other = Listener()
    with Upstream() as up:
        proc = subprocess.Popen(gwsreplay_command() + [
            "record", "--mode", "regular", "--allow-host", f"127.0.0.1:{up.port}", "--listen-port", str(port),
            "--db", str(db), "--quiet", "--flush-ms", "50"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_port(port)
            status, body = via_proxy(port, f"http://127.0.0.1:{up.port}/api/v2/me")
            assert status == 200 and "agent1" in body, (status, body)

            status, body = via_proxy(port, f"http://127.0.0.1:{other.port}/api/v2/me")
            assert status == 403 and f"127.0.0.1:{other.port} is not an allowed upstream host" in body, body
            assert f"127.0.0.1:{up.port}" in body        # says what is allowed
            # another name of the allowed address is another host: names are not resolved
            status, _ = via_proxy(port, f"http://localhost:{up.port}/api/v2/me")
            assert status == 403
            assert connect_status(port, f"127.0.0.1:{other.port}").split()[1] == "403"
            assert connect_status(port, "example.com:443").split()[1] == "403"
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
            other.close()
    assert proc.returncode == 0, err
    assert other.accepted == 0
    assert f"forwarding only to 127.0.0.1:{up.port}" in err, err
    assert "refused hosts 4" in err, err
    con = duckdb.connect(str(db), read_only=True)
    try:
        exchanges = con.execute("SELECT host, port, path, status FROM exchanges").fetchall()
        refused = con.execute("SELECT error FROM capture_errors WHERE kind = 'host_refused' ORDER BY ts").fetchall()
    finally:
        con.close()
    assert exchanges == [("127.0.0.1", up.port, "/api/v2/me", 200)], exchanges
    assert len(refused) == 4, refused
    assert f"GET http://127.0.0.1:{other.port}/api/v2/me" in refused[0][0]
    assert "CONNECT example.com:443" in refused[3][0]


def test_regular_mode_without_an_allow_list_refuses_to_start(tmp_path):
    result = run("record", "--mode", "regular", "--listen-port", str(free_port()), "--db", str(tmp_path / "x.duckdb"))
    one_line(result, "record", "open proxy", "--allow-host HOST[:PORT]", "--allow-any-host")
    assert files(tmp_path) == set()


def test_an_upstream_is_the_default_allow_list_and_any_host_is_explicit(tmp_path):
    with Upstream() as up:
        for extra, said in ([["--upstream", f"http://127.0.0.1:{up.port}"], f"forwarding only to 127.0.0.1:{up.port}"],
                            [["--allow-any-host"], "forwarding to ANY host"]):
            port = free_port()
            proc = subprocess.Popen(gwsreplay_command() + [
                "record", "--mode", "regular", *extra, "--listen-port", str(port), "--db",
                str(tmp_path / "x.duckdb"), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                wait_port(port)
                assert via_proxy(port, f"http://127.0.0.1:{up.port}/api/v2/me")[0] == 200
            finally:
                proc.send_signal(signal.SIGINT)
                _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0 and said in err, err


@pytest.mark.parametrize("args, words", [
    (["--upstream", "http://127.0.0.1:9", "--allow-host", "127.0.0.1"], ["apply to --mode regular"]),
    (["--mode", "regular", "--allow-host", "gws:http"], ["--allow-host", "port must be from 1 to 65535"]),
    (["--mode", "regular", "--allow-host", "gws", "--allow-any-host"], ["not both"]),
])
def test_allow_host_mistakes(tmp_path, args, words):
    one_line(run("record", *args, "--db", str(tmp_path / "x.duckdb")), "record", *words)
    assert files(tmp_path) == set()


def test_allow_list_entries():
    assert parse_entry("GWS.example.com.") == AllowedHost("gws.example.com", None)
    assert parse_entry("gws.example.com:8443") == AllowedHost("gws.example.com", 8443)
    assert parse_entry("[::1]:8090") == AllowedHost("::1", 8090)
    assert parse_entry("0:0:0:0:0:0:0:1") == AllowedHost("::1", None)
    for bad in ("", "gws:0", "gws:x", "http://gws", "[::1]x"):
        with pytest.raises(ValueError):
            parse_entry(bad)
    allow = AllowList((parse_entry("gws.example.com"), parse_entry("127.0.0.1:8090")))
    assert allow.allows("GWS.EXAMPLE.COM", 443) and allow.allows("gws.example.com.", 80)
    assert allow.allows("127.0.0.1", 8090) and not allow.allows("127.0.0.1", 8091)
    assert not allow.allows("evil.example.com", 443) and not allow.allows("gws.example.com.evil", 443)
