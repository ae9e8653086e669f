"""The README is executable documentation: every command block runs, in order, for real.

README.md is parsed when the tests run (nothing of its text is copied here): each fenced
block, in the section (heading) it sits in, is executed inside one temporary working
directory on 127.0.0.1, one test per section, sharing one module-scoped environment:

* shell blocks (```, ```sh, ```bash): each command (lines joined on a trailing ``\\``,
  comments stripped) runs with bash. ``gwsreplay``, ``.venv/bin/gwsreplay`` and
  ``mitmdump`` are this venv's; HOME is a private folder (mitmproxy's CA, curl's rc file).
  The README's fixed ports (8090, 8080, ...) are mapped to free ports, the same mapping
  for the whole run, and a server command that relies on its default port gets the
  mapped default spelled out, so a developer's own simulator on 8090 does not interfere.
  Servers (``gwsreplay sim``, ``record``, ``mock``, ``load --web``, ``mitmdump``) run in
  the background until their port listens and stay up for the following blocks; one is
  stopped with SIGINT (as Ctrl-C) when a later server wants its port, when a later
  command names the capture it records into ("Ctrl-C flushes and closes the file"), or
  at the end, and must then exit 0 with no traceback. Any other command must exit 0 (or
  the code an annotation states) within FOREGROUND_TIMEOUT, with no traceback; a curl
  must get an HTTP status below 400. Durations above DURATION_CAP seconds and load above
  LOAD_USERS_CAP virtual agents are cut down (the same command, less waiting).
* ```python blocks run with the venv's python and must print something.
* ```toml blocks must parse, and a roster or user map must load as the tool loads it.

The files the examples name exist before the run: captures/shift.duckdb (scripted agents
through the capture proxy, in front of the simulator on the README's 8090), the same
traffic as flows.mitm (mitmproxy's flow writer) and agent-desktop.har (mitmproxy's HAR
writer), users.toml and roster.toml as docs/replay.md and the simulator describe them,
and copies named by the merge example.

A block the test cannot run is annotated in the README, right before its fence, with
``<!-- readme-test: skip: REASON -->``; ``<!-- readme-test: exit N -->`` states an exit
code other than 0. The make targets are the one list kept here (MAKE_TARGETS).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.request import urlopen

import duckdb
import pytest
from replay_fixtures import _in_thread, scripted_session

from gwsreplay.cli.processes import free_port
from gwsreplay.replay.users import UserMap
from gwsreplay.sim.model.roster import Roster

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
FOREGROUND_TIMEOUT = 120.0
LISTEN_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
DURATION_CAP = 10
SHELL_LANGS = {"", "sh", "bash", "shell"}
QUIET_LANGS = {"text", "json", "console-output"}     # output shown to the reader, not run

#: `make TARGET` lines: None runs nothing (with the reason), a string is the command run instead.
MAKE_TARGETS: dict[str, tuple[str | None, str]] = {
    "test": (None, "runs this very suite"),
    "lab": (None, "JupyterLab is a server for a browser (and installs the lab extras)"),
    "lock": (None, "resolves new versions from the package index"),
    "demo": ("gwsreplay demo --duration 5",
             "the demo in the working directory, shorter: make demo runs it in the checkout after installing"),
}

#: servers: (program, subcommand) -> (the options that name their port, the first spelled out when
#: missing; the README's default port)
SERVERS: dict[tuple[str, str | None], tuple[tuple[str, ...], int]] = {
    ("gwsreplay", "sim"): (("--listen-port", "--port"), 8090),
    ("gwsreplay", "record"): (("--listen-port",), 8080),
    ("gwsreplay", "mock"): (("--listen-port", "--port"), 8090),
    ("gwsreplay", "load"): (("--web-port",), 8089),          # only with --web; a Locust option after --
    ("mitmdump", None): (("-p", "--listen-port"), 8080),
    ("mitmweb", None): (("-p", "--listen-port"), 8080),
}

ANNOTATION = re.compile(r"^<!--\s*readme-test:\s*(skip|exit)\b:?\s*(.*?)\s*-->\s*$")
HOST_PORT = re.compile(r"\b(127\.0\.0\.1|localhost|0\.0\.0\.0|\[::1\]):(\d{4,5})\b")
OPTION_PORT = re.compile(r"(?<!\S)(--port|--listen-port|--web-port|-p)(=|\s+)(\d{4,5})\b")
DURATION = re.compile(r"(?<!\S)(--duration|--run-time|-t)(=|\s+)(\d+)([smh]?)(?!\S)")
UNIT = {"": 1, "s": 1, "m": 60, "h": 3600}
LOAD_USERS = re.compile(r"(?<!\S)(--users)(=|\s+)(\d+)(?!\S)")
LOAD_USERS_CAP = 60         # virtual agents: the suite shares two cores
HTTP_STATUS = "readme-test-http-status:"


# ---------------------------------------------------------------------------- the README


@dataclass(frozen=True)
class Block:
    """One fenced block of the README."""

    line: int                  # of the opening fence, 1-based
    section: str
    lang: str
    text: str
    skip: str | None = None    # the annotated reason
    exit_code: int = 0

    @property
    def where(self) -> str:
        return f"README.md:{self.line} ({self.section})"


@dataclass(frozen=True)
class Section:
    title: str
    slug: str
    blocks: tuple[Block, ...]


def parse_readme(text: str) -> list[Block]:
    blocks: list[Block] = []
    section, notes, fence, lang, body, start = "(top)", [], None, "", [], 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if fence is not None:
            if stripped == fence:
                skip = next((arg or "no reason given" for kind, arg in notes if kind == "skip"), None)
                code = next((int(arg) for kind, arg in notes if kind == "exit"), 0)
                blocks.append(Block(start, section, lang, "\n".join(body), skip, code))
                fence, notes = None, []
            else:
                body.append(line)
            continue
        if stripped.startswith("```"):
            fence = stripped[:len(stripped) - len(stripped.lstrip("`"))]
            lang, body, start = stripped[len(fence):].strip().lower(), [], number
            continue
        match = ANNOTATION.match(stripped)
        if match:
            notes.append((match.group(1), match.group(2)))
        elif stripped.startswith("#"):
            section, notes = stripped.lstrip("#").strip(), []
        elif stripped:
            notes = []            # an annotation belongs to the block right after it
    assert fence is None, f"README.md:{start}: unclosed code fence"
    return blocks


def sections(blocks: list[Block]) -> list[Section]:
    out: dict[str, list[Block]] = {}
    for block in blocks:
        out.setdefault(block.section, []).append(block)
    slugs: list[str] = []
    for title in out:
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
        slugs.append(slug if slug not in slugs else f"{slug}-{len(slugs)}")
    return [Section(title, slug, tuple(bs)) for (title, bs), slug in zip(out.items(), slugs)]


def strip_comment(line: str) -> str:
    """The line without its shell comment (a # at the start of a word, outside quotes)."""
    quote = None
    escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def shell_commands(text: str) -> list[str]:
    commands, pending = [], ""
    for raw in text.splitlines():
        line = strip_comment(raw)
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        command = (pending + line.strip()).strip()
        pending = ""
        if command:
            commands.append(command)
    if pending.strip():
        commands.append(pending.strip())
    return commands


BLOCKS = parse_readme(README.read_text())
SECTIONS = sections(BLOCKS)


# ---------------------------------------------------------------------------- commands


def argv_of(command: str) -> list[str]:
    words = shlex.split(command)
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]        # VAR=value prefixes
    return words


def program(argv: list[str]) -> tuple[str, str | None]:
    """("gwsreplay", "sim"), ("mitmdump", None), ("make", "demo"), ("curl", None), ..."""
    if not argv:
        return "", None
    name = Path(argv[0]).name
    if name in ("gwsreplay", "make"):
        sub = next((a for a in argv[1:] if not a.startswith("-")), None)
        return name, sub
    if name in ("python", "python3") and argv[1:3] == ["-m", "gwsreplay"]:
        return "gwsreplay", next((a for a in argv[3:] if not a.startswith("-")), None)
    return name, None


def option(argv: list[str], *names: str) -> str | None:
    for i, word in enumerate(argv):
        for name in names:
            if word == name and i + 1 < len(argv):
                return argv[i + 1]
            if word.startswith(name + "="):
                return word[len(name) + 1:]
    return None


def is_server(argv: list[str]) -> bool:
    prog = program(argv)
    if prog == ("gwsreplay", "load"):
        return "--web" in argv
    return prog in SERVERS or (prog[0], None) in SERVERS


class Ports:
    """The README's fixed ports -> free ports, one mapping for the whole run."""

    def __init__(self) -> None:
        self.mapping: dict[int, int] = {}

    def __getitem__(self, port: int) -> int:
        if port not in self.mapping:
            while True:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    free = s.getsockname()[1]
                if free not in self.mapping.values():
                    break
            self.mapping[port] = free
        return self.mapping[port]

    def rewrite(self, text: str) -> str:
        text = HOST_PORT.sub(lambda m: f"{m.group(1)}:{self[int(m.group(2))]}", text)
        return OPTION_PORT.sub(lambda m: f"{m.group(1)}{m.group(2)}{self[int(m.group(3))]}", text)

    def command(self, command: str) -> str:
        """The command as run: ports mapped, a server's default port spelled out, durations capped."""
        argv = argv_of(command)
        prog = program(argv)
        key = prog if prog in SERVERS else (prog[0], None)
        if key in SERVERS and is_server(argv):
            names, default = SERVERS[key]
            opt = names[0]
            if option(argv, *names) is None:
                if key == ("gwsreplay", "load"):
                    command += f" {'' if ' -- ' in command else '-- '}{opt} {default}"
                else:
                    word = re.escape(key[1] or key[0])
                    command = re.sub(rf"(\b{word})(?=\s|$)", rf"\1 {opt} {default}", command, count=1)
        if prog == ("gwsreplay", "agents") and option(argv, "--target") is None:
            command = re.sub(r"(\bagents)(?=\s|$)", r"\1 --target http://127.0.0.1:8090", command, count=1)
        command = DURATION.sub(_capped, command)
        command = LOAD_USERS.sub(lambda m: f"{m.group(1)}{m.group(2)}{min(int(m.group(3)), LOAD_USERS_CAP)}", command)
        return self.rewrite(command)


@dataclass
class Server:
    """A README command running in the background."""

    command: str
    proc: subprocess.Popen
    port: int
    log: Path
    holds: str | None          # the capture file it records into
    where: str
    recorded_before: int = -1  # exchanges in `holds` before it started (a probe went through it)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Outcome:
    where: str
    command: str
    code: int
    output: str


@dataclass
class Env:
    """The working directory, the port mapping and the servers of one run."""

    work: Path
    ports: Ports
    env: dict[str, str]
    servers: list[Server] = field(default_factory=list)
    stopped: list[tuple[Server, int]] = field(default_factory=list)
    skipped: list[tuple[Block, str]] = field(default_factory=list)
    logs: int = 0

    def next_log(self, name: str) -> Path:
        self.logs += 1
        return self.work / "logs" / f"{self.logs:02d}-{re.sub(r'[^A-Za-z0-9]+', '-', name)[:40]}.log"

    # ----------------------------------------------------------------- servers

    def start(self, command: str, where: str) -> Server:
        argv = argv_of(command)
        prog = program(argv)
        key = prog if prog in SERVERS else (prog[0], None)
        port = option(argv, *SERVERS[key][0])
        assert port and port.isdigit(), f"{where}: which port does `{command}` listen on?"
        for server in [s for s in self.servers if s.port == int(port)]:
            self.stop(server, f"{where} wants its port")
        holds = option(argv, "--db") if prog == ("gwsreplay", "record") else None
        if key[0] in ("mitmdump", "mitmweb"):
            holds = next((v.split("=", 1)[1] for v in _set_values(argv) if v.startswith("capture_db=")), None)
        log = self.next_log(" ".join(argv[:2]))
        log.parent.mkdir(exist_ok=True)
        with log.open("wb") as out:
            proc = subprocess.Popen(["bash", "-c", command], cwd=self.work, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        before = exchanges(self.work / holds) if holds else -1
        server = Server(command, proc, int(port), log, holds, where, before)
        self.servers.append(server)
        deadline = time.monotonic() + LISTEN_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.servers.remove(server)
                raise AssertionError(f"{where}: `{command}` exited with {proc.returncode} before listening on "
                                     f"{port}:\n{server.output()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", int(port)), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"{where}: `{command}` did not listen on {port} within {LISTEN_TIMEOUT:.0f} s:\n"
                                 f"{server.output()[-3000:]}")
        if holds:                # a recorder: a desktop's first request goes through it
            with urlopen(f"http://127.0.0.1:{port}/api/v2/diagnostics/version", timeout=30) as answer:
                assert answer.status == 200, f"{where}: the recorder answered {answer.status}"
        return server

    def stop(self, server: Server, why: str, check: bool = True) -> int:
        """SIGINT (Ctrl-C: the process group, as a terminal sends it), then wait; it must exit 0, quietly."""
        self.servers.remove(server)
        if server.proc.poll() is None:
            os.killpg(server.proc.pid, signal.SIGINT)
            try:
                server.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(server.proc.pid, signal.SIGKILL)
                server.proc.wait()
        code = server.proc.returncode
        self.stopped.append((server, code))
        if check:
            output = server.output()[-3000:]
            assert code == 0, f"{server.where}: `{server.command}` exited with {code} after SIGINT ({why}):\n{output}"
            assert "Traceback" not in server.output(), f"{server.where}: `{server.command}` printed a traceback:\n{output}"
            if server.holds:
                after = exchanges(self.work / server.holds)
                assert after > server.recorded_before, (f"{server.where}: `{server.command}` recorded nothing into "
                                                        f"{server.holds} ({after} exchanges):\n{output}")
        return code

    def stop_all(self, check: bool = True) -> None:
        for server in list(reversed(self.servers)):
            self.stop(server, "the end of the README", check)

    def release(self, command: str, where: str) -> None:
        """Stop the recorders of the capture this command names: the README has them Ctrl-C'ed first."""
        if program(argv_of(command)) == ("gwsreplay", "snapshot"):
            return               # snapshot is made for a capture being recorded
        for server in [s for s in self.servers if s.holds and s.holds in command]:
            self.stop(server, f"{where} reads {server.holds}")

    # ----------------------------------------------------------------- commands

    def run(self, argv: list[str], where: str, command: str, timeout: float = FOREGROUND_TIMEOUT) -> Outcome:
        proc = subprocess.Popen(argv, cwd=self.work, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            raise AssertionError(f"{where}: `{command}` did not finish within {timeout:.0f} s:\n"
                                 f"{out.decode(errors='replace')[-3000:]}") from None
        return Outcome(where, command, proc.returncode, out.decode(errors="replace"))

    def link_inputs(self, argv: list[str]) -> None:
        """Files of the checkout a command names (proxy_addons/capture.py, ...) are visible in the work dir."""
        for word in argv + [v.split("=", 1)[-1] for v in _set_values(argv)]:
            if "/" not in word or word.startswith(("-", "/", "~", "$")) or "://" in word:
                continue
            top = Path(word).parts[0] if Path(word).parts else ""
            if top and top not in (".", "..") and (ROOT / word).exists() and not (self.work / top).exists():
                (self.work / top).symlink_to(ROOT / top)


def _capped(m: re.Match) -> str:
    seconds = int(m.group(3)) * UNIT[m.group(4)]
    return m.group(0) if seconds <= DURATION_CAP else f"{m.group(1)}{m.group(2)}{DURATION_CAP}{m.group(4) and 's'}"


def exchanges(capture: Path) -> int:
    if not capture.exists():
        return 0
    with duckdb.connect(str(capture), read_only=True) as con:
        return con.execute("SELECT count(*) FROM exchanges").fetchone()[0]


def _set_values(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, w in enumerate(argv[:-1]) if w == "--set"]


# ---------------------------------------------------------------------------- fixtures


USERS_TOML = """\
# recorded user -> replay user (docs/replay.md); the simulator's users
password = "password"

[users]
agent1 = "agent1"
agent2 = "agent2"
agent3 = { user = "agent3", password = "password" }

[pool]
pattern = "agent{n}"
first = 1
count = 10
"""


def roster_toml(agents: int = 10) -> str:
    return "".join(f'[[users]]\nuser_name = "agent{k}"\npassword = "password"\nphone_number = "{7000 + k}"\n'
                   f'first_name = "Agent"\nlast_name = "{k}"\n\n' for k in range(1, agents + 1))


def make_fixtures(env: Env, readme: str) -> None:
    """What the examples name, made the way a user makes it: the simulator on the README's 8090
    stays up as the GWS of the recording examples; scripted desktops go through `gwsreplay
    record`, which also writes the same flows as a mitmproxy flow file and a HAR."""
    work = env.work
    (work / "captures").mkdir()
    (work / "home").mkdir()
    (work / ".venv").symlink_to(VENV_BIN.parent)
    (work / "home" / ".curlrc").write_text(f'write-out = "\\n{HTTP_STATUS} %{{http_code}}\\n"\n')
    (work / "users.toml").write_text(USERS_TOML)
    (work / "roster.toml").write_text(roster_toml())
    sim = env.start(env.ports.command("gwsreplay sim --listen-port 8090 --agents 10 --seed 0 --answer-delay 0.05"),
                    "the simulator of the recording examples")
    proxy = env.start(f"gwsreplay record --upstream http://127.0.0.1:{sim.port} --listen-port {free_port()} "
                      "--db captures/shift.duckdb --quiet --set save_stream_file=flows.mitm "
                      "--set hardump=agent-desktop.har", "the fixture recording")
    _in_thread(scripted_session(f"http://127.0.0.1:{proxy.port}"))
    assert env.stop(proxy, "fixture recorded") == 0, proxy.output()
    for name in ("captures/shift.duckdb", "flows.mitm", "agent-desktop.har"):
        assert (work / name).stat().st_size > 0, name
    for name in sorted(set(re.findall(r"captures/(proxy-[\w-]+\.duckdb)", readme))):
        shutil.copy(work / "captures" / "shift.duckdb", work / "captures" / name)


@pytest.fixture(scope="module")
def readme_env(tmp_path_factory):
    work = tmp_path_factory.mktemp("readme")
    env = Env(work=work, ports=Ports(), env={
        **os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(work / "home"),
        "PYTHONUNBUFFERED": "1", "COLUMNS": "120", "NO_COLOR": "1"})
    env.env.pop("VIRTUAL_ENV", None)
    try:
        make_fixtures(env, README.read_text())
        yield env
    finally:
        env.stop_all(check=False)          # the last test checks; here only nothing is left running


# ---------------------------------------------------------------------------- running a block


def check_outcome(outcome: Outcome, expected: int) -> None:
    tail = outcome.output[-4000:]
    assert outcome.code == expected, (f"{outcome.where}: `{outcome.command}` exited with {outcome.code} "
                                      f"(expected {expected}):\n{tail}")
    assert "Traceback" not in outcome.output, f"{outcome.where}: `{outcome.command}` printed a traceback:\n{tail}"


def run_shell_block(env: Env, block: Block) -> int:
    ran = 0
    for written in shell_commands(block.text):
        argv = argv_of(written)
        prog = program(argv)
        command = written
        if prog[0] == "make":
            target = prog[1] or ""
            assert target in MAKE_TARGETS, f"{block.where}: `{written}`: add make {target} to MAKE_TARGETS"
            instead, reason = MAKE_TARGETS[target]
            if instead is None:
                env.skipped.append((block, f"{written}: {reason}"))
                continue
            command = instead
        background = bool(re.search(r"(?<!&)&\s*$", command))    # `cmd &`: a server started for later blocks
        command = env.ports.command(command.rstrip().rstrip("&").rstrip() if background else command)
        argv = argv_of(command)
        env.link_inputs(argv)
        env.release(command, block.where)
        if is_server(argv):
            env.start(command, block.where)
        else:
            assert not background, f"{block.where}: `{written}`: which port tells that it is up? (SERVERS)"
            outcome = env.run(["bash", "-c", command], block.where, command)
            check_outcome(outcome, block.exit_code)
            if program(argv)[0] == "curl":
                statuses = [int(line.split()[-1]) for line in outcome.output.splitlines()
                            if line.startswith(HTTP_STATUS)]
                assert statuses and all(200 <= s < 400 for s in statuses), (
                    f"{block.where}: `{written}` got HTTP {statuses}:\n{outcome.output[-2000:]}")
        ran += 1
    return ran


def run_python_block(env: Env, block: Block) -> None:
    script = env.work / f"readme_block_{block.line}.py"
    script.write_text(env.ports.rewrite(block.text))
    for server in [s for s in env.servers if s.holds and s.holds in block.text]:
        env.stop(server, f"{block.where} reads {server.holds}")
    outcome = env.run([str(VENV_BIN / "python"), script.name], block.where, f"python {script.name}")
    check_outcome(outcome, block.exit_code)
    assert outcome.output.strip(), f"{block.where}: the Python example printed nothing"


def check_toml_block(block: Block, work: Path) -> None:
    data = tomllib.loads(block.text)
    if isinstance(data.get("users"), list):
        Roster.from_dict(data)
    elif {"users", "pool", "password"} & set(data):
        path = work / f"readme_block_{block.line}.toml"
        path.write_text(block.text)
        UserMap.from_toml(path, simulator=True)


@pytest.mark.parametrize("section", SECTIONS, ids=[s.slug for s in SECTIONS])
def test_readme_section(section: Section, readme_env: Env):
    """Every block of this README section runs as written (or is annotated why it cannot)."""
    for block in section.blocks:
        if block.skip:
            readme_env.skipped.append((block, block.skip))
            continue
        if block.lang in SHELL_LANGS:
            commands = shell_commands(block.text)
            assert commands, f"{block.where}: a shell block without a command"
            before = len(readme_env.skipped)
            ran = run_shell_block(readme_env, block)
            assert ran + len(readme_env.skipped) - before == len(commands), f"{block.where}: a command was not run"
        elif block.lang == "python":
            run_python_block(readme_env, block)
        elif block.lang == "toml":
            check_toml_block(block, readme_env.work)
        else:
            assert block.lang in QUIET_LANGS, (f"{block.where}: a ```{block.lang} block: run it here or annotate "
                                               f"it with <!-- readme-test: skip: REASON -->")


def test_readme_servers_stop_cleanly(readme_env: Env):
    """Ctrl-C ends every server the README started with exit code 0 and no traceback; few blocks are skipped."""
    readme_env.stop_all()
    assert readme_env.stopped, "the README started no server"
    skipped = [b.where for b in BLOCKS if b.skip]
    assert len(skipped) * 3 <= len(BLOCKS), f"{len(skipped)} of {len(BLOCKS)} README blocks are skipped: run them"


def test_readme_conventions_parse():
    """The machinery on a made-up README: annotations, fences, continuations, comments, ports, caps."""
    text = ("# A\n\n<!-- readme-test: skip: no GWS here -->\n```\nmake lab\n```\n\n## B\nSay:\n\n"
            "<!-- readme-test: exit 1 -->\n```sh\ngwsreplay sim &   # in the background\n"
            "curl -s -d '{\"a\": \"#1\"}' \\\n     http://127.0.0.1:8090/x   # comment\n```\n"
            "<!-- readme-test: skip: stale -->\ntext between\n```python\nprint(1)\n```\n")
    blocks = parse_readme(text)
    assert [(b.section, b.lang, b.skip, b.exit_code) for b in blocks] == [
        ("A", "", "no GWS here", 0), ("B", "sh", None, 1), ("B", "python", None, 0)]
    assert shell_commands(blocks[1].text) == ["gwsreplay sim &", "curl -s -d '{\"a\": \"#1\"}' http://127.0.0.1:8090/x"]
    assert [s.slug for s in sections(blocks)] == ["a", "b"]
    ports = Ports()
    sim = ports.command("gwsreplay sim")
    assert sim == f"gwsreplay sim --listen-port {ports[8090]}" and ports[8090] != 8090
    assert ports.command("curl http://127.0.0.1:8090/x") == f"curl http://127.0.0.1:{ports[8090]}/x"
    assert ports.command("mitmdump -s a.py -p 8080") == f"mitmdump -s a.py -p {ports[8080]}"
    assert ports.command("gwsreplay agents --duration 60 --seed 1") == (
        f"gwsreplay agents --target http://127.0.0.1:{ports[8090]} --duration {DURATION_CAP} --seed 1")
    assert ports.command("gwsreplay load --db c --target http://127.0.0.1:8091 --users 1000 --run-time 10m") == (
        f"gwsreplay load --db c --target http://127.0.0.1:{ports[8091]} --users {LOAD_USERS_CAP} "
        f"--run-time {DURATION_CAP}s")
    assert is_server(argv_of("gwsreplay load --db c --web")) and not is_server(argv_of("gwsreplay load --db c"))
