"""GWS status codes, the synchronous error every handler raises, and how it is rendered.

Every channel module raises :class:`GwsError`; only :meth:`Core.error` turns it into
``(http_status, {"statusCode", "statusMessage"})``. ``L<n>`` = a line of
``gws-8.6-api-reference.txt``.
"""

from __future__ import annotations

from typing import Callable

# Return values table (L2282-2323).
SC_OK = 0
SC_MISSING = 1          # a required parameter is missing
SC_INVALID = 2          # a parameter is not valid for the current state
SC_FORBIDDEN = 3
SC_INTERNAL = 4
SC_NO_PERMISSION = 5
SC_NOT_FOUND = 6
SC_PARTIAL = 7
SC_RANGE = 10
SC_READ_ONLY = 11
SC_EXISTS = 18
SC_IN_USE = 19
SC_NOT_AUTHENTICATED = 20

VOICE_UNAVAILABLE = "Voice service is not available at this time"   # L1319-1326
#: T-Server's refusal of an operation the call or device does not allow now (ErrorMessage, L4222).
INCORRECT_OBJECT_STATE = "Incorrect object state"
#: Interaction Server's refusal, as a media notification with notificationType Error (L13752:
#: "Operationfailed", a space lost in the PDF text).
OPERATION_FAILED = "Operation failed"


def http_status_for(status_code: int, *, voice_down: bool = False) -> int:
    """The project-wide statusCode -> HTTP status mapping (docs/voice-model.md)."""
    if status_code in (SC_OK, SC_PARTIAL):
        return 200
    if status_code in (SC_MISSING, SC_INVALID, SC_RANGE, SC_READ_ONLY):
        return 400
    if status_code in (SC_FORBIDDEN, SC_NO_PERMISSION):
        return 403
    if status_code == SC_NOT_FOUND:
        return 404
    if status_code == SC_INTERNAL:
        return 503 if voice_down else 400
    if status_code in (SC_EXISTS, SC_IN_USE):
        return 409
    if status_code == SC_NOT_AUTHENTICATED:
        return 401
    return 400


class GwsError(Exception):
    """A synchronous failure: becomes ``{"statusCode", "statusMessage"}`` + HTTP status."""

    def __init__(self, status_code: int, message: str, *, http_status: int | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.http_status = http_status      # overrides http_status_for (a media service down: 503)


class StateError(GwsError):
    """An operation the resource's current state does not allow (outside its capabilities).

    GWS passes such a request on and answers ``statusCode`` 0 ("only that the request was
    successfully sent to T-Server", L535); the refusal arrives later as a notification
    (ErrorMessage L4185-4225, a media ``Error`` notification L13752). ``notify`` emits that
    notification and ``answer`` is the HTTP answer; with ``Core.sync_errors`` (or without
    ``notify``) the request is refused at once instead, as a :class:`GwsError`.
    """

    def __init__(self, message: str, *, notify: Callable[[], None] | None = None,
                 answer: dict | None = None):
        super().__init__(SC_INVALID, message)
        self.notify = notify
        self.answer = answer if answer is not None else {"statusCode": SC_OK}


def render_error(err: GwsError, *, voice_down: bool) -> tuple[int, dict]:
    """``(http_status, body)`` of a refused request; ``voice_down`` makes statusCode 4 a 503."""
    status = err.http_status or http_status_for(err.status_code, voice_down=voice_down)
    return status, {"statusCode": err.status_code, "statusMessage": err.message}


def missing(name: str) -> GwsError:
    return GwsError(SC_MISSING, f"Parameter '{name}' is missing")


def invalid(name: str, why: str = "The specified value is not within valid range") -> GwsError:
    # Wording of the only documented example (L4565-4569).
    return GwsError(SC_INVALID, f"Parameter '{name}' is invalid: \"{why}\"")


def unsupported(op: str) -> GwsError:
    return invalid("operationName", f"Operation {op} is not supported on this resource")


def not_valid_in_state(op: str, what: str, state: str, caps: list[str], *,
                       notify: Callable[[], None] | None = None, answer: dict | None = None) -> StateError:
    """An operation the resource's capabilities do not list (state tables, states.py)."""
    return StateError(f"Operation {op} is not valid for {what} in state {state} "
                      f"(capabilities: {', '.join(caps) or 'none'})", notify=notify, answer=answer)
