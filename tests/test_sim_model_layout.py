"""The simulator's layout: channel modules know only the shared core, no import hides
inside a function, no module outgrows 600 lines, and the state tables name only
operations some handler carries out.

These hold the split of the former voice.py/media.py (issue 13) in place.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gwsreplay.sim
from gwsreplay.sim.model import call_ops, chats, emails, im, items, session, states, workitems

SIM = Path(gwsreplay.sim.__file__).parent
MODEL = "gwsreplay.sim.model."

#: Each channel's modules; a channel may import its own modules and the shared core only.
CHANNELS = {
    "voice calls": {"calls", "call_flow", "call_ops"},
    "chat": {"chats"},
    "email": {"emails"},
    "workitems and open media": {"workitems"},
    "workbins": {"workbins"},
    "im": {"im"},
}
#: The facade composes the channels; nothing else may import them.
FACADE = {"contact_center", "multimedia"}


def _modules() -> list[Path]:
    return sorted(SIM.rglob("*.py"))


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) of every import in ``path``."""
    tree = ast.parse(path.read_text())
    nested = {id(sub) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom))}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, node.lineno, id(node) in nested))
        elif isinstance(node, ast.Import):
            out += [(alias.name, node.lineno, id(node) in nested) for alias in node.names]
    return out


def test_no_import_inside_a_function():
    nested = [f"{p.relative_to(SIM)}:{line} {mod}" for p in _modules() for mod, line, inner in _imports(p) if inner]
    assert nested == []


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_a_channel_imports_the_core_only(channel):
    others = set().union(*(mods for name, mods in CHANNELS.items() if name != channel)) | FACADE
    for name in sorted(CHANNELS[channel]):
        path = SIM / "model" / f"{name}.py"
        imported = {mod.removeprefix(MODEL) for mod, _, _ in _imports(path) if mod.startswith(MODEL)}
        assert imported & others == set(), f"{name}.py imports {sorted(imported & others)}"


def test_only_the_facade_and_the_server_import_the_facade():
    for path in _modules():
        if path.parent.name != "model" or path.stem in FACADE:
            continue
        imported = {mod.removeprefix(MODEL) for mod, _, _ in _imports(path) if mod.startswith(MODEL)}
        assert imported & FACADE == set(), path.name


def test_every_simulator_module_is_under_600_lines():
    sizes = {str(p.relative_to(SIM)): len(p.read_text().splitlines()) for p in _modules()}
    assert max(sizes.values()) < 600, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


@pytest.mark.parametrize("table, operations", [
    (states.CALL, call_ops.CALL_OPERATIONS),
    (states.CHAT, chats.CHAT_OPERATIONS),
    (states.EMAIL, emails.Emails.operations),
    (states.WORKITEM, workitems.Workitems.operations),
    (states.OPENMEDIA, workitems.Workitems.operations),
    (states.IM, im.IM_OPERATIONS),
    (states.FORWARDING, session.DEVICE_OPERATIONS),
    (states.DO_NOT_DISTURB, session.DEVICE_OPERATIONS),
    (states.SUPERVISION, session.DEVICE_OPERATIONS),
], ids=lambda v: getattr(v, "resource", None) or "")
def test_every_operation_a_table_allows_has_a_handler(table, operations):
    assert table.operations() <= set(operations)


def test_capabilities_come_in_table_order_and_transitions_from_the_same_rows():
    # chat: group order, the first occurrence keeps its place (Leave), a later group overrides its target
    caps = states.CHAT.capabilities(states.CHATTING, {"with_agents", "consulting"})
    assert caps[:2] == ["Transfer", "Leave"] and caps[-1] == "CancelConsult"
    assert states.CHAT.next(states.CHATTING, "Leave", ()) == states.LEFT_CHAT
    assert states.CHAT.next(states.CHATTING, "Leave", {"with_agents"}) == states.COMPLETED
    with pytest.raises(LookupError):          # depends on the guards: they must be given
        states.CHAT.next(states.CHATTING, "Leave")
    with pytest.raises(LookupError):          # not a capability of the state: no transition either
        states.CALL.next(states.RINGING, "Hold")
    # calls: the canonical order whatever the groups
    assert states.CALL.capabilities(states.ESTABLISHED, {"conference", "unmuted", "owner"})[:5] == \
        ["Hold", "Hangup", "SendDtmf", "MuteCall", "SingleStepTransfer"]
    assert states.CALL.next(states.HELD, "CompleteConference") == states.ESTABLISHED
    assert states.CALL.allows(states.RELEASED, "SetCallDisposition")      # ungoverned
    assert states.CALL.capabilities(states.RELEASED) == []
    # email: a transferred draft is accepted back into Composing
    assert states.EMAIL.next(states.INVITED, "Accept", {"draft"}) == states.COMPOSING
    assert states.EMAIL.next(states.INVITED, "Accept", ()) == states.PROCESSING


def test_owned_kinds_share_the_owned_operations():
    for kind in (emails.Emails, workitems.Workitems):
        assert set(items.OWNED_OPERATIONS) <= set(kind.operations)
