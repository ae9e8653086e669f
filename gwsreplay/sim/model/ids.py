"""Deterministic identifiers for the simulator, all derived from one seed.

Same seed + same sequence of requests -> the same ids in the same order. Nothing
here reads the clock or the global ``random`` module.

Formats (protocol.md §9, §12.1; samples in the 8.6 reference):

* devices, voice environments, services: UUID-shaped (``9c14cad7-17c4-48d0-8492-7cf0ff92c224``)
* users: 32 lower-case hex characters (``8eb52b0724344f67a44389db5aa5f192``)
* calls: 32-character T-Server call UUIDs, ``<16-char session><10-char site><6-char counter>``
  in T-Server's base-32 alphabet (``013V08JRL498H10I04000VTAES000015``); GWS 8.6 uses it
  as both ``id`` and ``callUuid``
* connIds: 16 hex characters, ``007102<6 hex session><4 hex counter>`` (``0071027198180017``)
* custom agent states: lower-case UUIDs (``90b2b0c6-8395-4d7b-b94a-ed634ac612b3``); the
  system agent states have fixed GUIDs (see ``agents.SYSTEM_AGENT_STATES``)
"""

from __future__ import annotations

import random
import uuid

#: T-Server's call-UUID alphabet: base 32, digits then A..V.
B32 = "0123456789ABCDEFGHIJKLMNOPQRSTUV"


def _b32(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, digit = divmod(value, 32)
        out.append(B32[digit])
    return "".join(reversed(out))


class IdGenerator:
    """One generator per simulated contact center."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._rng = random.Random(seed)
        # What a T-Server instance would fix at start-up: the session part of call
        # UUIDs and of connIds. Drawn first, so they depend on the seed only.
        self._call_prefix = "0" + "".join(self._rng.choice(B32) for _ in range(15))
        self._call_site = "".join(self._rng.choice(B32) for _ in range(6)) + "LAES"
        self._conn_prefix = "007102" + "".join(self._rng.choice("0123456789abcdef") for _ in range(6))
        self._call_seq = 0

    # ------------------------------------------------------------ generic

    def uuid(self) -> str:
        """A UUID4-shaped string drawn from the seeded generator."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def hex32(self) -> str:
        return "%032x" % self._rng.getrandbits(128)

    # ------------------------------------------------------------ by resource

    def device_id(self) -> str:
        return self.uuid()

    def user_id(self) -> str:
        return self.hex32()

    def service_id(self) -> str:
        return self.uuid()

    def agent_state_id(self) -> str:
        return self.uuid()

    def call_ids(self) -> tuple[str, str]:
        """``(call_uuid, conn_id)`` of the next call; ``call_uuid`` is also the call's ``id``."""
        self._call_seq += 1
        seq = self._call_seq
        call_uuid = self._call_prefix + self._call_site + _b32(seq, 6)
        conn_id = self._conn_prefix + "%04x" % (seq & 0xFFFF)
        return call_uuid, conn_id


#: Interaction Server ids use upper-case letters and digits (``0000Na9B26EF002X``).
B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class MediaIdGenerator:
    """Ids of the multimedia model (docs/media-model.md), from their own seeded stream.

    Separate from :class:`IdGenerator` so that enabling multimedia never changes a
    voice id. Formats follow the 8.6 samples:

    * interactions (chats, emails, workitems, open media): 16 characters, an Interaction
      Server prefix fixed per seed + a base-36 counter (``0005Ka9QX3B10001``)
    * chat participants: 16 upper-case hex characters (``009052C5E743004C``)
    * workbins, media services: UUIDs
    """

    def __init__(self, seed: int = 0):
        self._rng = random.Random(f"gws-media/{seed}")
        self._prefix = "000" + "".join(self._rng.choice(B36) for _ in range(2)) + "a9" + \
            "".join(self._rng.choice(B36) for _ in range(5))
        self._participant_prefix = "0090" + "".join(self._rng.choice("0123456789ABCDEF") for _ in range(8))
        self._interaction_seq = 0
        self._participant_seq = 0

    def uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def interaction_id(self) -> str:
        self._interaction_seq += 1
        value, digits = self._interaction_seq, []
        for _ in range(4):
            value, digit = divmod(value, 36)
            digits.append(B36[digit])
        return self._prefix + "".join(reversed(digits))

    def participant_id(self) -> str:
        self._participant_seq += 1
        return self._participant_prefix + "%04X" % (self._participant_seq & 0xFFFF)
