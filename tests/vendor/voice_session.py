"""The vendor's voice samples stitched into one agent session per version (a capture a desktop could have made).

Each sample of the references stands alone: its own device id, DN (5000, 5005, 15000...) and call
ids, so the samples one after another are not a session (a Hold on a call nobody answered). A
*scene* takes one sample sequence (or one notification: an event nobody asked for, a call ringing)
and renames its device id, DNs and call ids/connIds to the session's: agent1 is DN 5000 on one
device, the caller is 5001, the transfer and conference target is 5002, and each call of the
session keeps one id and one connId from its first ring to its release. Nothing else changes:
states, capabilities, userData, extensions stay as the vendor printed them. Renames replace whole
JSON strings (DNs) or substrings (ids, also inside ``uri``/``path``/``callUri``).

The order follows the samples: log in, Ready, an inbound call answered, held, retrieved, DTMF,
disposition, hung up, After Call Work; Ready, a Dial whose user data is attached,
updated and deleted, hung up; an inbound call transferred in two steps, another in one step; NotReady, log out. Used by
tests/test_vendor_replay.py.
"""

from __future__ import annotations

import copy
import re
from typing import Any, NamedTuple

from vendor_har import record, sequences

#: the session's agent: user, DN, place, device id (the Ready sample's)
AGENT = "agent1"
DN, CALLER, TARGET = "5000", "5001", "5002"
DEVICE = "74152ed8-858f-4a33-9e96-36213a678d30"
#: every device id the voice samples use (efelab32 is efe1ab32 as the text conversion read it)
SAMPLE_DEVICES = ("631608b3-ceb1-472b-ba05-2ae39555b0d1", "efe1ab32-53f9-43ce-b65e-5768c61f7d4a",
                  "efelab32-53f9-43ce-b65e-5768c61f7d4a", "128ff83e-b474-47e6-b64e-0e63cd707004")

#: roster of the simulator the sessions replay against (TOML, for ``gwsreplay sim --roster``):
#: the sample DNs; 5001 and 5002 are DNs of the switch no one is logged in on (they ring, unanswered)
ROSTER_TOML = f"""
[[users]]
user_name = "{AGENT}"
phone_number = "{DN}"
place = "SIP_{DN}"

[[users]]
user_name = "agent2"
phone_number = "{CALLER}"

[[users]]
user_name = "agent3"
phone_number = "{TARGET}"
"""


class Scene(NamedTuple):
    """One sample (a sequence id, or a notification record id) with the renames that fit it in."""

    source: str
    renames: dict[str, str]
    drop: tuple[str, ...] = ()      # records printed in the sample that another agent received


def _calls(**pairs: str) -> dict[str, str]:
    return dict(pairs)


def _rename(value: Any, renames: dict[str, str]) -> Any:
    """All renames at once (5000 -> 5001 and 5005 -> 5000 in one scene do not chain)."""
    ids = sorted((k for k in renames if len(k) > 6 and "=" not in k), key=len, reverse=True)
    pattern = re.compile("|".join(map(re.escape, ids))) if ids else None

    def walk(v: Any, key: str | None = None) -> Any:
        if isinstance(v, dict):
            return {k: walk(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, key) for x in v]
        if isinstance(v, str):
            if f"{key}={v}" in renames:          # one key only: "dnis=15000"
                return renames[f"{key}={v}"]
            if v in renames and len(v) <= 6:
                return renames[v]
            return pattern.sub(lambda m: renames[m.group(0)], v) if pattern else v
        return v
    return walk(value)


def _records(version: str, source: str) -> list[dict]:
    if "-S" in source:
        return copy.deepcopy(sequences(version)[source])
    return [copy.deepcopy(record(version, source))]


# ----------------------------------------------------------------------------- 8.6

# The session's calls: (id, connId). A, C, E, F ring from 5001; B is dialed; D and G are consultations.
C86 = {k: (f"011DJV5JI898NB2L04000VTAES0000{k}A"[:32], f"007102385535e0{k.lower()}0") for k in "ABCDEFG"}


def _86(call: str, sample_id: str, sample_conn: str) -> dict[str, str]:
    cid, conn = C86[call]
    return {sample_id: cid, sample_conn: conn}


RING86 = ("011DJV5JI898NB2L04000VTAES000005", "007102385535e005")     # gws86-L7390, 5000 rings 5005
ANSWER86 = ("012PUFMMS0ASNAK4807GK2LAES00000C", "007102719260b00c")
HOLD86 = ("012PUFMMS0ASNAK4807GK2LAES00000I", "007102719260b012")
DIAL86 = ("012PUFMMS0ASNAK4807GK2LAES000004", "007102719260b004")
USERDATA86 = ("01RCC3N118B1V0SL807GK2LAES00000R", "007102719818001b")


def _answered_86(call: str) -> list[Scene]:
    return [Scene("gws86-L7390", {**_86(call, *RING86), "5000": CALLER, "5005": DN}),
            Scene("gws86-S5520", _86(call, *ANSWER86))]


SCENES_86: list[Scene] = [
    Scene("gws86-S4445", {}),                                   # login, place SIP_5000
    Scene("gws86-S4680", {}),                                   # Ready
    *_answered_86("A"),
    Scene("gws86-S5700", _86("A", *HOLD86)),
    Scene("gws86-S5797", _86("A", *HOLD86)),
    Scene("gws86-S5982", _86("A", "012PUFMMS0ASNAK4807GK2LAES00000J", "007102719260b013")),
    Scene("gws86-S5890", _86("A", *HOLD86)),                    # Hangup
    Scene("gws86-S4892", {}),                                   # After Call Work
    Scene("gws86-S4680", {}),                                   # Ready
    Scene("gws86-S5343", _86("B", *DIAL86)),                    # Dial 5002 (rings on: nobody there)
    Scene("gws86-S8961", {**_86("B", *USERDATA86), "15001": TARGET}),
    Scene("gws86-S9050", {**_86("B", *USERDATA86), "15001": TARGET}),
    Scene("gws86-S9126", {**_86("B", *USERDATA86), "15001": TARGET}),
    Scene("gws86-S9327", {**_86("B", *USERDATA86), "15001": TARGET}),
    Scene("gws86-S9230", {**_86("B", *USERDATA86), "15001": TARGET}),
    Scene("gws86-S5890", {**_86("B", *HOLD86), "15001": TARGET, "dnis=15000": TARGET}),   # Hangup while dialing
    *_answered_86("C"),
    # its consult's parentCallPath names ...00H where its parentCallUri names ...00M: both are the held call
    Scene("gws86-S7257", {"dnis=15001": DN, **_86("C", "01RCC3N118B1V0SL807GK2LAES00000M", "0071027198180011"),
                          "01RCC3N118B1V0SL807GK2LAES00000H": C86["C"][0],
                          **_86("D", "01RCC3N118B1V0SL807GK2LAES00000N", "0071027198180013")}),
    Scene("gws86-S7789", {"dnis=15001": DN, **_86("C", "01RCC3N118B1V0SL807GK2LAES00000M", "0071027198180016"),
                          **_86("D", "01RCC3N118B1V0SL807GK2LAES00000N", "0071027198180017")}),
    *_answered_86("E"),
    Scene("gws86-S7087", {**_86("E", "01RCC3N118B1V0SL807GK2LAES00000D", "007102719818000d"), "dnis=15001": DN}),
    Scene("gws86-S4750", {}),                                   # NotReady
    Scene("gws86-S4643", {}),                                   # log out
]
COMMON_86 = {**{d: DEVICE for d in SAMPLE_DEVICES}, "15000": DN, "15001": CALLER, "15002": TARGET}


# ----------------------------------------------------------------------------- 8.5.2 (call ids are connIds)

C852 = {k: f"0071023821aec0{k.lower()}0" for k in "ABCDEFG"}


def _852(call: str, sample_id: str) -> dict[str, str]:
    return {sample_id: C852[call]}


def _answered_852(call: str) -> list[Scene]:
    # gws852-L1260: 5001 rings 5000; the Answer sample answers 5001 on 5005
    return [Scene("gws852-L1260", _852(call, "007102385535e00a")),
            Scene("gws852-S4861", {**_852(call, "0071023821aec011"), "5005": DN})]


SCENES_852: list[Scene] = [
    Scene("gws852-S10289", {}),                                 # login, place SIP_5000
    Scene("gws852-S8836", {}),                                  # Ready
    *_answered_852("A"),
    Scene("gws852-S5047", {**_852("A", "0071023821aec013"), "5000": CALLER, "5005": DN}),   # Hold
    Scene("gws852-S5151", {**_852("A", "0071023821aec013"), "5000": CALLER, "5005": DN}),   # Retrieve
    Scene("gws852-S5336", {**_852("A", "0071023821aec014"), "5000": CALLER, "5005": DN}),   # SendDtmf
    Scene("gws852-S5247", {**_852("A", "0071023821aec013"), "5000": CALLER, "5005": DN}),   # Hangup
    Scene("gws852-S9068", {}),                                  # After Call Work
    Scene("gws852-S8836", {}),                                  # Ready
    *_answered_852("B"),
    Scene("gws852-S8498", {**_852("B", "0071023821aec01e"), "5005": DN}),    # UpdateUserData
    Scene("gws852-S8720", {**_852("B", "0071023821aec01e"), "5005": DN}),    # DeleteUserDataPair
    Scene("gws852-S8609", {**_852("B", "0071023821aec01e"), "5005": DN}),    # DeleteUserData
    Scene("gws852-S6363", {**_852("B", "0071023821aec014"), "5001": TARGET, "5000": CALLER, "5005": DN}),
    *_answered_852("C"),
    # the last notification of each (Ringing) is the transfer target's, printed in the same sample
    Scene("gws852-S6536", {**_852("C", "007102385535e005"), **_852("D", "007102385535e006"),
                           "5001": TARGET, "5000": CALLER, "5005": DN}, drop=("gws852-L6671",)),
    Scene("gws852-S7048", {**_852("C", "007102385535e005"), **_852("D", "007102385535e006"),
                           "5001": TARGET, "5000": CALLER, "5005": DN}, drop=("gws852-L7160",)),
    Scene("gws852-S8917", {}),                                  # NotReady
    Scene("gws852-S10343", {}),                                 # log out
]
COMMON_852 = {d: DEVICE for d in SAMPLE_DEVICES}


def voice_session(version: str) -> list[tuple[str, list[dict]]]:
    """Steps for vendor_har.har_entries: (scene label, its renamed records), in session order."""
    scenes, common = (SCENES_86, COMMON_86) if version == "8.6" else (SCENES_852, COMMON_852)
    steps = []
    for k, scene in enumerate(scenes):
        kept = [r for r in _records(version, scene.source) if r["id"] not in scene.drop]
        recs = _rename(kept, {**common, **scene.renames})
        steps.append((f"{scene.source}#{k}", recs))
    return steps
