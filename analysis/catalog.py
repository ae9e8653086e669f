"""The documented operations: which operationName is valid on which resource.

Operation coverage asks "which documented operations did this session exercise";
this is the list it is measured against: the Voice API (P§9.1, L3932-10599), the
agent-state operations of the Channels API and of the supervisor's agent-state
control (M§14, L44920-45227), and every non-voice operation of
``media_operations.csv`` (one row per operation or URL variant of the IM, chat,
customer chat, Digital User Events, email, Facebook, Facebook private messaging,
open media, SMS, Twitter, workbin and workitem APIs). A unit test checks the last
part against the CSV. The table itself is ``gwsreplay.core.operations.DOCUMENTED_OPERATIONS``
(the operation vocabulary the capture and the replayer share); this module serves it to the
analysis. Reference codes as in state_models.py.

Families are the capture's resource types (``exchanges.resource_type``, through
:func:`resource_family`), except the customer side of chat (``/api/v2/chats``
without ``/me``), which is its own family ``customer-chat``.
"""

from __future__ import annotations

import re

import pandas as pd

from gwsreplay.core.operations import DOCUMENTED_OPERATIONS

# (resource family, API section, operationNames, reference): the operation vocabulary of the core
_CATALOG = DOCUMENTED_OPERATIONS


def documented_operations() -> pd.DataFrame:
    """One row per (resource family, operationName) the reference documents."""
    rows = [
        {"resource_family": fam, "api": api, "operation_name": op, "ref": ref}
        for fam, api, ops, ref in _CATALOG for op in ops
    ]
    return pd.DataFrame(rows)


_FAMILY_ALIASES = {
    "users": "me", "user": "me", "me": "me",
    "channels": "channel", "devices": "device", "calls": "call",
    "im-sessions": "im-session", "imsessions": "im-session", "imsession": "im-session", "im_sessions": "im-session",
    "chats": "chat", "emails": "email", "workitems": "workitem", "workbins": "workbin",
}


def resource_family(resource_type: str | None, api_area: str | None = None) -> str | None:
    """Normalise a captured resource_type ("calls", "im_sessions", ...) to a catalog family.

    With the exchange's ``api_area``, the customer side of chat is ``customer-chat``.
    """
    if api_area == "customer-chat":
        return "customer-chat"
    if resource_type is None or (isinstance(resource_type, float)):
        return None
    key = resource_type.strip().lower()
    if key in _FAMILY_ALIASES:
        return _FAMILY_ALIASES[key]
    key = re.sub(r"[_ ]", "-", key)
    return _FAMILY_ALIASES.get(key, key[:-1] if key.endswith("s") else key)
