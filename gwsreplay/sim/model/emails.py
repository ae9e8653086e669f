"""The email channel: inbound emails, drafts, replies; Save, Send, Cancel.

An owned kind (items.py) with the email state table (states.EMAIL). Inbound emails
come from the control API (``inject_email``); an agent creates drafts (Create) or
replies (Reply, ReplyAll: a new Composing email, parent = the inbound one).
"""

from __future__ import annotations

from typing import Any, Mapping

from gwsreplay.sim.model.channels import MediaChannels
from gwsreplay.sim.model.core import Core
from gwsreplay.sim.model.errors import SC_OK, invalid, missing
from gwsreplay.sim.model.interactions import Desk, Interaction
from gwsreplay.sim.model.items import OWNED_OPERATIONS, OwnedItems
from gwsreplay.sim.model.requests import optional_user_data, queue_param, string_param
from gwsreplay.sim.model.states import COMPOSING, EMAIL, StateTable

DEFAULT_MAILBOX = "support@gws-sim.example"
EMAIL_FIELDS = ("from", "to", "cc", "bcc", "subject", "body", "bodyAsPlainText", "mime")


class Emails(OwnedItems):
    operations = {
        **OWNED_OPERATIONS, "SetDisposition": "_item_properties", "AddComment": "_item_properties",
        "Reply": "_email_reply", "ReplyAll": "_email_reply", "Save": "_email_save", "Send": "_email_send",
        "Cancel": "_email_cancel",
    }
    reply_reference = False

    def __init__(self, core: Core, channels: MediaChannels, desk: Desk, *, mailbox: str = DEFAULT_MAILBOX):
        super().__init__(core, channels, desk)
        self.mailbox = mailbox
        self._contacts: dict[str, str] = {}
        desk.kinds["email"] = self

    def routes(self) -> tuple:
        return (
            ("GET", r"/me/emails", self.desk.get_collection("email")),
            ("POST", r"/me/emails", self.post_create("email")),
            ("GET", r"/me/emails/(?P<ix_id>[^/]+)", self.desk.get_one("email")),
            ("POST", r"/me/emails/(?P<ix_id>[^/]+)", self._post_email),
        )

    def table(self, ix: Interaction) -> StateTable:
        return EMAIL

    def guards(self, ix: Interaction) -> tuple[str, ...]:
        return ("draft",) if ix.direction == "Outbound" else ()

    # ================================================================== control API

    def inject_email(self, from_: Any, to: Any = None, subject: Any = None, body: Any = None,
                     user_data: Any = None, mailbox: Any = None) -> dict:
        """An inbound email arrives: routed to ``to`` (a user name) or to a Ready agent."""
        address = from_.get("address", from_.get("email")) if isinstance(from_, Mapping) else from_
        if not isinstance(address, str) or "@" not in address:
            raise missing("from") if not address else invalid("from", "must be an email address")
        target = self.desk.inject_target(to, "email")
        user_data = optional_user_data(user_data)
        for name, value in (("subject", subject), ("body", body), ("mailbox", mailbox)):
            if value is not None and not isinstance(value, str):
                raise invalid(name, "must be a string")
        self.channels.require_services("email")
        ix = self.desk.new_interaction("email")
        box = mailbox or self.mailbox
        ix.contact_id = self._contact(address)
        ix.email = {"from": address, "to": [box], "subject": subject or "", "body": body or "",
                    "bodyAsPlainText": body or "", "mime": "text/plain"}
        ix.user_data = {"Subject": subject or "", "FromAddress": address, "EmailAddress": address, "To": box,
                        "Mailbox": box, "ContactId": ix.contact_id, "Origination_Source": "Email", **user_data}
        self.desk.deliver(ix, target)
        return {"statusCode": SC_OK, "id": ix.id}

    def _contact(self, address: str) -> str:
        contact = self._contacts.get(address)
        if contact is None:
            contact = self._contacts[address] = self.desk.ids.interaction_id()
        return contact

    # ================================================================== agent side

    def created(self, ix: Interaction, params: dict, parent: str | None) -> None:
        ix.state = COMPOSING
        ix.email = {"from": self.mailbox, "to": [], "subject": "", "mime": "text/plain"}
        parent_ix = self.desk.interactions.get(parent) if parent else None
        ix.contact_id = parent_ix.contact_id if parent_ix else None

    def _post_email(self, agent, params, query, body):
        return self.post_owned(agent, "email", params, body)

    def _email_reply(self, ix, agent, op, body, ref):
        queue_param(body)
        prefix = string_param(body, "subjectPrefix", required=False)
        texts = {}
        for name in ("body", "bodyAsPlainText", "mime"):
            value = string_param(body, name, required=False)
            if value is not None:
                texts[name] = value
        user_data = body.get("userData")
        if user_data is not None and not isinstance(user_data, Mapping):
            raise invalid("userData", "must be a JSON object")
        original = ix.email
        reply = self.desk.new_interaction("email", direction="Outbound")
        reply.owner, reply.state, reply.parent_id, reply.contact_id = agent, COMPOSING, ix.id, ix.contact_id
        to = [original.get("from")] if original.get("from") else []
        cc: list[str] = []
        if op == "ReplyAll":
            cc = [a for a in original.get("to", []) + original.get("cc", []) if a not in to and a != self.mailbox]
        mine = original.get("to", [self.mailbox])
        reply.email = {"from": mine[0] if mine else self.mailbox, "to": to, "subject":
                       (prefix if prefix is not None else "RE: ") + original.get("subject", ""),
                       "mime": "text/plain", **texts}
        if cc:
            reply.email["cc"] = cc
        reply.user_data = {"ContactId": ix.contact_id} if ix.contact_id else {}
        reply.user_data.update(user_data or {})
        self.desk.emit_ix(reply, agent, "StatusChange", ref=ref)

    @staticmethod
    def _email_fields(body: Mapping, *, required: bool) -> dict:
        email = body.get("email")
        if email is None:
            if required:
                raise missing("email")
            return {}
        if not isinstance(email, Mapping):
            raise invalid("email", "must be a JSON object")
        out = {}
        for name in EMAIL_FIELDS:
            if name not in email:
                continue
            value = email[name]
            if name in ("to", "cc", "bcc"):
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise invalid(f"email.{name}", "must be an array of addresses")
            elif not isinstance(value, str):
                raise invalid(f"email.{name}", "must be a string")
            out[name] = value
        return out

    def _email_save(self, ix, agent, op, body, ref):
        ix.email.update(self._email_fields(body, required=True))
        self.desk.emit_ix(ix, agent, "EmailSaved", ref=ref)

    def _email_send(self, ix, agent, op, body, ref):
        string_param(body, "queueName")
        merged = {**ix.email, **self._email_fields(body, required=False)}
        if not merged.get("to"):
            raise missing("email.to")
        if not merged.get("from"):
            raise missing("email.from")
        ix.email = merged
        ix.state = self._next_state(ix, op)       # Sent
        self.desk.emit_ix(ix, agent, "StatusChange", ref=ref)
        self.desk.finish(ix)

    def _email_cancel(self, ix, agent, op, body, ref):
        ix.state = self._next_state(ix, op)       # Canceled
        self.desk.emit_ix(ix, agent, "StatusChange", ref=ref)
        self.desk.finish(ix)

    # ================================================================== resource

    def resource(self, ix: Interaction, agent, *, state: str | None = None, party=None) -> dict:
        state = state or ix.state
        out: dict = {"userData": dict(ix.user_data)}
        for name in EMAIL_FIELDS:
            if name in ix.email:
                out[name] = list(ix.email[name]) if isinstance(ix.email[name], list) else ix.email[name]
        if ix.contact_id:
            out["contactId"] = ix.contact_id
        out["capabilities"] = self.capabilities(ix, state)
        out["uri"] = self.desk.uri(ix)
        out["state"] = state
        if ix.parent_id:
            out["parentId"] = ix.parent_id
        if ix.comment:
            out["comment"] = ix.comment
        out["id"] = ix.id
        return out

    def snapshot(self, ix: Interaction, out: dict) -> None:
        out["email"] = dict(ix.email)
        out["parentId"] = ix.parent_id

