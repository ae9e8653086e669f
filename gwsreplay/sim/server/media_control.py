"""Control API for the multimedia model (``/sim/v1``, no auth): what comes from outside.

Hooked into the aiohttp app by ``make_app`` (``add_media_routes(app)``); the model
calls are in :mod:`gwsreplay.sim.model.multimedia`. Answers are JSON, bad input is a 400 with
``{"statusCode": 1|2, "statusMessage"}``, never a 500. See docs/media-model.md.

| method + path | body | model call |
|---|---|---|
| POST /sim/v1/chats | ``{"from": {"nickname"}, "to": "agent1"|null, "message"?, "userData"?, "subject"?}`` | ``inject_chat`` |
| POST /sim/v1/chats/{id}/messages | ``{"text", "type"?: Text|TypingStarted|TypingStopped}`` | ``customer_message`` |
| POST /sim/v1/chats/{id}/leave | – | ``customer_message(type=ParticipantLeft)`` |
| POST /sim/v1/emails | ``{"from": "a@b", "to": "agent1"|null, "subject"?, "body"?, "userData"?, "mailbox"?}`` | ``inject_email`` |
| POST /sim/v1/workitems | ``{"to": "agent1"|null, "userData"?, "mediaType"?}`` | ``inject_workitem`` |
| POST /sim/v1/openmedia/{mediaType} | ``{"to", "userData"?}`` | ``inject_workitem(media_type=...)`` |
"""

from __future__ import annotations

from aiohttp import web

from gwsreplay.sim.server.http_helpers import CONTACT_CENTER, gws_error, json_response, read_json_body


def add_media_routes(app: web.Application) -> None:
    def media():
        return app[CONTACT_CENTER].media

    async def body_of(request: web.Request, required: bool = True):
        if media() is None:
            return gws_error(404, 6, "Multimedia is not enabled on this simulator")
        return await read_json_body(request, required=required)

    async def inject_chat(request: web.Request) -> web.Response:
        body = await body_of(request)
        if isinstance(body, web.Response):
            return body
        status, payload = media().inject_chat(body.get("from"), body.get("to"), body.get("message"),
                                              body.get("userData"), body.get("subject"))
        return json_response(status, payload)

    async def chat_message(request: web.Request) -> web.Response:
        body = await body_of(request)
        if isinstance(body, web.Response):
            return body
        status, payload = media().customer_message(request.match_info["chat_id"], body.get("text"),
                                                   body.get("type", "Text"))
        return json_response(status, payload)

    async def chat_leave(request: web.Request) -> web.Response:
        body = await body_of(request, required=False)
        if isinstance(body, web.Response):
            return body
        status, payload = media().customer_message(request.match_info["chat_id"], None, "ParticipantLeft")
        return json_response(status, payload)

    async def inject_email(request: web.Request) -> web.Response:
        body = await body_of(request)
        if isinstance(body, web.Response):
            return body
        status, payload = media().inject_email(body.get("from"), body.get("to"), body.get("subject"),
                                               body.get("body"), body.get("userData"), body.get("mailbox"))
        return json_response(status, payload)

    async def inject_workitem(request: web.Request) -> web.Response:
        body = await body_of(request)
        if isinstance(body, web.Response):
            return body
        media_type = request.match_info.get("media_type", body.get("mediaType"))
        status, payload = media().inject_workitem(body.get("to"), body.get("userData"), media_type)
        return json_response(status, payload)

    r = app.router
    r.add_post("/sim/v1/chats", inject_chat)
    r.add_post("/sim/v1/chats/{chat_id}/messages", chat_message)
    r.add_post("/sim/v1/chats/{chat_id}/leave", chat_leave)
    r.add_post("/sim/v1/emails", inject_email)
    r.add_post("/sim/v1/workitems", inject_workitem)
    r.add_post("/sim/v1/openmedia/{media_type}", inject_workitem)
