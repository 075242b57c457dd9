"""A ticketing system files cases through POST /hooks/cases, signed with SWARM_WEBHOOK_SECRET."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from sqlalchemy import select

from storage.models import Case, Participant
from tests.conftest import RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import cards, file, services
from workflows import signing
from workflows.announcements import deliver_owed
from workflows.intake import publish_pending
from workflows.tickets import case_fields, urgency_of

SECRET = "ticketing-shared-secret"
TICKET = {
    "case_number": "27343",
    "urgency": "high",
    "topic": "api",
    "summary": "Webhooks time out",
    "details": "Since 09:00 every webhook to EU endpoints times out.",
    "customer": "ACME",
    "filer_email": "agent@example.com",
}


@pytest.fixture
def bot_settings() -> dict[str, Any]:
    return {"swarm_webhook_secret": SECRET}


def hook_url(bot: RunningBot) -> str:
    return bot.url.replace("/slack/events", "/hooks/cases")


def post(
    bot: RunningBot,
    body: Any,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    signature: str | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> tuple[int, Any]:
    """Send a body (a dict is JSON-encoded) the way the ticketing system does."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    all_headers = {
        "Content-Type": "application/json",
        "X-Swarm-Timestamp": ts,
        "X-Swarm-Signature": signature or signing.signature(secret, ts, raw),
        **(headers or {}),
    }
    request = Request(hook_url(bot), data=raw, headers=all_headers, method=method)
    try:
        with urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    bot.driver.executor.wait_idle()
    return status, json.loads(text) if text else None


def cases(bot: RunningBot) -> list[Case]:
    with bot.uow() as uow:
        return list(uow.session.scalars(select(Case).order_by(Case.id)))


def test_a_signed_ticket_files_a_case_and_answers_with_its_thread(
    bot: RunningBot, fake: FakeSlack
) -> None:
    status, body = post(bot, TICKET)
    assert status == 201
    [case] = cases(bot)
    assert body == {"case_number": "27343", "thread_permalink": case.permalink}
    assert case.permalink and case.filer_id == "U0AGENT01"  # agent@example.com
    assert (case.urgency, case.topic_key, case.customer) == ("high", "api", "ACME")
    [card] = cards(fake, "C0API0001")
    assert card["ts"] == case.thread_ts and "<@U0AGENT01>" in str(card["blocks"])
    [dm] = fake.dms("U0AGENT01")
    assert case.permalink in dm["text"]
    assert fake.calls_to("users.lookupByEmail")[0]["email"] == "agent@example.com"


def test_the_same_ticket_again_answers_200_with_the_same_case(
    bot: RunningBot, fake: FakeSlack
) -> None:
    first = post(bot, TICKET)
    again = post(bot, {**TICKET, "summary": "Sent again by a retry"})
    assert first[0] == 201 and again == (200, first[1])
    assert len(cases(bot)) == 1 and len(cards(fake, "C0API0001")) == 1
    assert len(fake.dms("U0AGENT01")) == 1


def test_a_case_filed_from_the_modal_is_not_filed_again_by_the_ticket(
    bot: RunningBot, fake: FakeSlack
) -> None:
    file(bot, fake)
    status, body = post(bot, TICKET)
    assert status == 200 and body["thread_permalink"] == cases(bot)[0].permalink
    assert len(cases(bot)) == 1


def test_an_unknown_filer_email_files_a_case_without_a_slack_filer(
    bot: RunningBot, fake: FakeSlack
) -> None:
    status, body = post(bot, {**TICKET, "filer_email": "someone@elsewhere.example"})
    assert status == 201 and body["thread_permalink"]
    [case] = cases(bot)
    assert case.filer_id == ""
    [card] = cards(fake, "C0API0001")
    assert "the ticketing system" in str(card["blocks"])
    assert fake.calls_to("conversations.open") == [] and fake.dms("U0AGENT01") == []
    with bot.uow() as uow:
        assert list(uow.session.scalars(select(Participant.user_id))) == []
    assert case.filer_notified_at is not None  # nobody is owed a note


def test_a_ticket_without_filer_email_makes_no_lookup(bot: RunningBot, fake: FakeSlack) -> None:
    ticket = {k: v for k, v in TICKET.items() if k != "filer_email"}
    assert post(bot, ticket)[0] == 201
    assert fake.calls_to("users.lookupByEmail") == []


def test_invalid_fields_come_back_as_a_list_and_nothing_is_filed(
    bot: RunningBot, fake: FakeSlack
) -> None:
    status, body = post(
        bot,
        {
            "case_number": "12",
            "urgency": "whenever",
            "topic": "nope",
            "summary": "",
            "details": "x" * 3001,
            "customer": ["not", "text"],
            "filer_email": "not-an-email",
        },
    )
    assert status == 400
    fields = {e["field"] for e in body["errors"]}
    assert fields == {
        "case_number",
        "urgency",
        "topic",
        "summary",
        "details",
        "customer",
        "filer_email",
    }
    assert all(e["message"] for e in body["errors"])
    assert cases(bot) == [] and fake.calls_to("chat.postMessage") == []


def test_a_region_the_topic_lacks_is_a_field_error(bot: RunningBot) -> None:
    status, body = post(bot, {**TICKET, "topic": "billing", "region": "emea"})
    assert status == 400 and [e["field"] for e in body["errors"]] == ["region"]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b'"a string"', b""],
    ids=["truncated", "not-utf8", "array", "string", "empty"],
)
def test_malformed_bodies_get_400_and_change_nothing(bot: RunningBot, body: bytes) -> None:
    status, answer = post(bot, body)
    assert status == 400 and answer["errors"][0]["field"] == "body"
    assert cases(bot) == []


def test_bad_signatures_get_401_and_change_nothing(bot: RunningBot, fake: FakeSlack) -> None:
    now = int(time.time())
    calls = len(fake.calls)
    assert post(bot, TICKET, secret="another-secret")[0] == 401
    assert post(bot, TICKET, signature="v1=" + "0" * 64)[0] == 401
    assert post(bot, TICKET, signature="v0=abc")[0] == 401
    assert post(bot, TICKET, signature="v1=é")[0] == 401
    assert post(bot, TICKET, timestamp=now - 301)[0] == 401  # stale
    assert post(bot, TICKET, timestamp=now + 301)[0] == 401  # from the future
    assert post(bot, TICKET, headers={"X-Swarm-Timestamp": "soon"})[0] == 401
    # A body changed after signing.
    raw = json.dumps(TICKET).encode()
    signature = signing.signature(SECRET, now, raw)
    tampered = json.dumps({**TICKET, "urgency": "critical"}).encode()
    assert post(bot, tampered, timestamp=now, signature=signature)[0] == 401
    assert cases(bot) == []
    assert [c.method for c in fake.calls[calls:]] == []  # not a single Slack call


def test_a_signature_inside_the_window_is_accepted(bot: RunningBot) -> None:
    assert post(bot, TICKET, timestamp=int(time.time()) - 290)[0] == 201


def test_a_body_over_one_mib_gets_413(bot: RunningBot) -> None:
    big = json.dumps({**TICKET, "details": "x" * (1 << 20)}).encode()
    status, body = post(bot, big)
    assert status == 413 and "body over" in body["error"]
    assert cases(bot) == []


def test_only_post_is_allowed(bot: RunningBot) -> None:
    request = Request(hook_url(bot), method="GET")
    with pytest.raises(HTTPError) as info:
        urlopen(request, timeout=10)
    assert info.value.code == 405


def test_when_slack_refuses_the_card_the_case_is_filed_and_the_card_follows(
    bot: RunningBot, fake: FakeSlack
) -> None:
    fake.inject("chat.postMessage", status=503, times=4)
    status, body = post(bot, TICKET)
    assert status == 201 and body == {"case_number": "27343", "thread_permalink": None}
    assert cards(fake, "C0API0001") == []
    assert publish_pending(services(bot))
    status, body = post(bot, TICKET)
    assert status == 200 and body["thread_permalink"] == cases(bot)[0].permalink


def test_a_slack_outage_during_the_filer_lookup_files_without_a_filer(
    bot: RunningBot, fake: FakeSlack
) -> None:
    fake.inject("users.lookupByEmail", status=503, times=4)
    status, _body = post(bot, TICKET)
    assert status == 201 and cases(bot)[0].filer_id == ""


def test_a_salesforce_case_is_mapped(bot: RunningBot, fake: FakeSlack) -> None:
    status, body = post(
        bot,
        {
            "sobject": {
                "Id": "5003000000D8cuI",
                "CaseNumber": "00027343",
                "Subject": "Webhooks time out",
                "Description": "Every EU webhook times out",
                "Priority": "High",
                "Product__c": "api",
                "Account": {"Name": "ACME"},
                "ContactEmail": "agent@example.com",
            }
        },
    )
    assert status == 201 and body["case_number"] == "00027343"
    [case] = cases(bot)
    assert (case.summary, case.urgency, case.customer, case.filer_id) == (
        "Webhooks time out",
        "high",
        "ACME",
        "U0AGENT01",
    )


class TestWithoutSecret:
    @pytest.fixture
    def bot_settings(self) -> dict[str, Any]:
        return {}

    def test_the_route_is_not_there(self, bot: RunningBot) -> None:
        status, body = post(bot, TICKET)
        assert status == 404 and cases(bot) == []


# -- the mapping (a pure function) -------------------------------------------------------------
def test_zendesk_and_servicenow_priorities_become_urgencies() -> None:
    assert [urgency_of(p) for p in ("urgent", "Normal", "LOW", "P1", "sev2", "3 - Moderate")] == [
        "critical",
        "medium",
        "low",
        "critical",
        "high",
        "medium",
    ]
    assert urgency_of("whenever") == "whenever"  # kept, then refused by validation


def test_a_zendesk_ticket_envelope_is_unwrapped() -> None:
    fields, errors = case_fields(
        {
            "ticket": {
                "subject": "Login loop",
                "description": "SSO sends users back to login",
                "priority": "urgent",
                "number": 4711,
                "product": "api",
                "organization": {"name": "Initech"},
                "requester": {"email": "agent@example.com"},
            }
        }
    )
    assert errors == {}
    assert fields == {
        "case_number": "4711",
        "urgency": "critical",
        "topic": "api",
        "summary": "Login loop",
        "details": "SSO sends users back to login",
        "customer": "Initech",
        "filer_email": "agent@example.com",
    }


def test_the_documented_names_win_over_aliases() -> None:
    fields, _ = case_fields({**TICKET, "Subject": "not this one"})
    assert fields["summary"] == "Webhooks time out"


def test_when_the_filers_note_fails_the_ticket_still_gets_its_thread(
    bot: RunningBot, fake: FakeSlack
) -> None:
    fake.inject("chat.postMessage", status=503, times=4, when=lambda p: p["channel"] == "U0AGENT01")
    status, body = post(bot, TICKET)
    assert status == 201 and body["thread_permalink"] == cases(bot)[0].permalink
    assert fake.dms("U0AGENT01") == []
    bot.swarm.clock.advance(minutes=1)  # the owed note backs off after its failure
    publish_pending(services(bot))
    deliver_owed(services(bot))  # the posts:retry sweep
    assert len(fake.dms("U0AGENT01")) == 1
