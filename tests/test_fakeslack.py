"""The fake Slack Web API, driven through the real slack_sdk WebClient."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from tests.fakeslack import FakeSlack

TOKEN = "xoxb-fake-suite"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN, team_id="T9", bot_user_id="UBOT", bot_id="BBOT") as fake:
        yield fake


@pytest.fixture
def slack(server: FakeSlack) -> FakeSlack:
    """A fresh workspace: three people, a public, a private and an archived channel."""
    server.reset()
    server.add_user("U1", name="ann")
    server.add_user("U2", name="bob", is_admin=True)
    server.add_user("U3", name="guest", is_restricted=True)
    server.add_user("U4", name="gone", deleted=True)
    server.add_channel("C1", "general", members=["UBOT", "U1"])
    server.add_channel("C2", "secret", is_private=True, members=["UBOT", "U1"])
    server.add_channel("C3", "old-stuff", is_archived=True, members=["UBOT"])
    server.add_channel("C4", "elsewhere", members=["U1"])
    return server


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.url, timeout=5)


def error_of(call) -> str:  # type: ignore[no-untyped-def]
    """The Slack error a call fails with."""
    with pytest.raises(SlackApiError) as info:
        call()
    return info.value.response["error"]


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# -- chat -------------------------------------------------------------------------------------
def test_post_stores_the_message_and_gives_a_permalink(slack: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(
        channel="C1",
        text="hello",
        blocks=[section("hi")],
        metadata={"event_type": "x", "event_payload": {"n": 1}},
    )
    assert posted["channel"] == "C1" and posted["message"]["text"] == "hello"
    [stored] = slack.messages("C1")
    assert stored["ts"] == posted["ts"] and stored["user"] == "UBOT"
    assert stored["bot_id"] == "BBOT" and stored["blocks"] == [section("hi")]
    assert stored["metadata"]["event_payload"] == {"n": 1}
    link = client.chat_getPermalink(channel="C1", message_ts=posted["ts"])["permalink"]
    assert link == f"https://fake.slack.com/archives/C1/p{posted['ts'].replace('.', '')}"

    reply = client.chat_postMessage(channel="C1", text="in thread", thread_ts=posted["ts"])
    reply_link = client.chat_getPermalink(channel="C1", message_ts=reply["ts"])["permalink"]
    assert reply_link.endswith(f"?thread_ts={posted['ts']}&cid=C1")
    parent, child = slack.thread("C1", posted["ts"])
    assert parent["reply_count"] == 1 and parent["latest_reply"] == reply["ts"]
    assert child["thread_ts"] == posted["ts"]
    assert float(reply["ts"]) > float(posted["ts"])
    assert (
        error_of(lambda: client.chat_getPermalink(channel="C1", message_ts="1.000001"))
        == "message_not_found"
    )


def test_post_is_refused_where_slack_would_refuse_it(slack: FakeSlack, client: WebClient) -> None:
    assert (
        error_of(lambda: client.chat_postMessage(channel="C999", text="x")) == "channel_not_found"
    )
    assert error_of(lambda: client.chat_postMessage(channel="C3", text="x")) == "is_archived"
    assert error_of(lambda: client.chat_postMessage(channel="C4", text="x")) == "not_in_channel"
    assert (
        error_of(lambda: client.chat_postMessage(channel="C1", text="x" * 40_001)) == "msg_too_long"
    )
    assert (
        error_of(
            lambda: client.chat_postMessage(
                channel="C1", text="x", blocks=[{"type": "divider"}] * 51
            )
        )
        == "invalid_blocks"
    )
    assert (
        error_of(
            lambda: client.chat_postMessage(channel="C1", text="x", blocks=[section("y" * 3001)])
        )
        == "invalid_blocks"
    )
    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel="C1", text="x", blocks=[header])
    assert info.value.response["error"] == "invalid_blocks"
    assert "151" in info.value.response["response_metadata"]["messages"][0]
    assert (
        error_of(lambda: client.api_call("chat.postMessage", json={"channel": "C1"})) == "no_text"
    )
    client.chat_postMessage(channel="C1", text="x", blocks=[section("y" * 3000)])
    client.conversations_join(channel="C4")
    client.chat_postMessage(channel="C4", text="after joining")
    assert [m["text"] for m in slack.messages("C4")] == ["after joining"]


def test_update_only_the_bots_own_messages(slack: FakeSlack, client: WebClient) -> None:
    mine = client.chat_postMessage(channel="C1", text="v1")
    theirs = slack.add_message("C1", user="U1", text="human")
    updated = client.chat_update(channel="C1", ts=mine["ts"], text="v2", blocks=[section("b")])
    assert (updated["ts"], updated["text"]) == (mine["ts"], "v2")
    [first, _] = slack.messages("C1")
    assert first["text"] == "v2" and first["blocks"] == [section("b")] and first["edited"]
    assert (
        error_of(lambda: client.chat_update(channel="C1", ts=theirs["ts"], text="x"))
        == "cant_update_message"
    )
    assert (
        error_of(lambda: client.chat_update(channel="C1", ts="123.000001", text="x"))
        == "message_not_found"
    )
    assert (
        error_of(
            lambda: client.chat_update(
                channel="C1", ts=mine["ts"], text="x", blocks=[section("z" * 3001)]
            )
        )
        == "invalid_blocks"
    )
    client.chat_delete(channel="C1", ts=mine["ts"])
    assert [m["text"] for m in slack.messages("C1")] == ["human"]


def test_ephemerals_are_kept_apart(slack: FakeSlack, client: WebClient) -> None:
    sent = client.chat_postEphemeral(channel="C1", user="U2", text="only you")
    assert sent["message_ts"]
    assert slack.messages("C1") == []
    [note] = slack.ephemerals(channel="C1", user="U2")
    assert note["text"] == "only you" and slack.ephemerals(user="U1") == []
    assert (
        error_of(lambda: client.chat_postEphemeral(channel="C2", user="U2", text="x"))
        == "user_not_in_channel"
    )
    client.chat_postEphemeral(channel="C2", user="U1", text="members are fine")


def test_dms_by_user_id_and_by_opened_channel(slack: FakeSlack, client: WebClient) -> None:
    direct = client.chat_postMessage(channel="U1", text="by user id")
    assert direct["channel"] == "DU1"
    opened = client.conversations_open(users=["U1"])["channel"]["id"]
    assert opened == "DU1"
    client.chat_postMessage(channel=opened, text="by dm id")
    assert [m["text"] for m in slack.dms("U1")] == ["by user id", "by dm id"]
    assert slack.dms("U2") == []


def test_form_bodies_and_query_strings_are_normalised(slack: FakeSlack, client: WebClient) -> None:
    blocks = [section("form")]
    client.api_call(
        "chat.postMessage", params={"channel": "C1", "text": "t", "blocks": json.dumps(blocks)}
    )
    assert slack.calls_to("chat.postMessage")[0]["blocks"] == blocks
    assert slack.messages("C1")[0]["blocks"] == blocks
    client.conversations_invite(channel="C1", users=["U2"])
    assert slack.calls_to("conversations.invite")[0]["users"] == ["U2"]
    info = client.api_call("conversations.info", http_verb="GET", params={"channel": "C1"})
    assert info["channel"]["name"] == "general"
    assert slack.calls[-1].token == TOKEN


# -- channels ---------------------------------------------------------------------------------
def test_create_and_rename_follow_slacks_name_rules(slack: FakeSlack, client: WebClient) -> None:
    created = client.conversations_create(name="help-27343_sev1")["channel"]
    assert created["id"].startswith("C") and len(created["id"]) == 11
    assert created["is_member"] and "UBOT" in slack.channel(created["id"])["members"]
    assert slack.channel_by_name("help-27343_sev1")["id"] == created["id"]
    private = client.conversations_create(name="private-one", is_private=True)["channel"]
    assert private["id"].startswith("G") and private["is_private"]
    for bad, error in (
        ("Has Caps", "invalid_name_specials"),
        ("a.b", "invalid_name_specials"),
        ("", "invalid_name_required"),
        ("x" * 81, "invalid_name_maxlength"),
        ("general", "name_taken"),
        ("old-stuff", "name_taken"),
    ):
        assert error_of(lambda bad=bad: client.conversations_create(name=bad)) == error
    client.conversations_create(name="x" * 80)
    renamed = client.conversations_rename(channel=created["id"], name="help-27343-done")
    assert renamed["channel"]["name"] == "help-27343-done"
    assert slack.channel_by_name("help-27343_sev1") is None
    assert (
        error_of(lambda: client.conversations_rename(channel=created["id"], name="old-stuff"))
        == "name_taken"
    )
    assert error_of(lambda: client.conversations_rename(channel="C3", name="new")) == "is_archived"
    assert (
        error_of(lambda: client.conversations_rename(channel="C4", name="new")) == "not_in_channel"
    )
    assert (
        error_of(lambda: client.conversations_rename(channel="C404", name="new"))
        == "channel_not_found"
    )


def test_invite_without_force_is_all_or_nothing(slack: FakeSlack, client: WebClient) -> None:
    cases = {
        "UBOT": "cant_invite_self",
        "U1": "already_in_channel",
        "U3": "user_is_restricted",
        "U4": "user_not_found",
        "U404": "user_not_found",
    }
    for user, error in cases.items():
        assert (
            error_of(
                lambda user=user: client.conversations_invite(channel="C1", users=["U2", user])
            )
            == error
        )
    assert slack.channel("C1")["members"] == ["UBOT", "U1"]
    invited = client.conversations_invite(channel="C1", users="U2")
    assert invited["channel"]["id"] == "C1" and "errors" not in invited
    assert slack.channel("C1")["members"] == ["UBOT", "U1", "U2"]
    assert error_of(lambda: client.conversations_invite(channel="C3", users="U2")) == "is_archived"
    assert (
        error_of(lambda: client.conversations_invite(channel="C4", users="U2")) == "not_in_channel"
    )
    assert (
        error_of(lambda: client.conversations_invite(channel="C9", users="U2"))
        == "channel_not_found"
    )


def test_invite_with_force_invites_the_valid_users(slack: FakeSlack, client: WebClient) -> None:
    slack.add_user("U5", name="eve")
    invited = client.conversations_invite(channel="C1", users=["U2", "U1", "U3", "U5"], force=True)
    assert invited["ok"]
    assert invited["errors"] == [
        {"user": "U1", "ok": False, "error": "already_in_channel"},
        {"user": "U3", "ok": False, "error": "user_is_restricted"},
    ]
    assert slack.channel("C1")["members"] == ["UBOT", "U1", "U2", "U5"]
    with pytest.raises(SlackApiError) as info:
        client.conversations_invite(channel="C1", users=["U4", "U1"], force=True)
    assert info.value.response["error"] == "user_not_found"
    assert len(info.value.response["errors"]) == 2


def test_channel_lifecycle(slack: FakeSlack, client: WebClient) -> None:
    client.conversations_setTopic(channel="C1", topic="Case 27343")
    client.conversations_setPurpose(channel="C1", purpose="Swarm")
    assert (
        error_of(lambda: client.conversations_setTopic(channel="C1", topic="t" * 251)) == "too_long"
    )
    info = client.conversations_info(channel="C1")["channel"]
    assert (info["topic"]["value"], info["purpose"]["value"]) == ("Case 27343", "Swarm")
    assert info["is_member"] and info["num_members"] == 2
    assert error_of(lambda: client.conversations_info(channel="C2x")) == "channel_not_found"
    client.conversations_invite(channel="C1", users="U2")
    client.conversations_kick(channel="C1", user="U2")
    assert slack.channel("C1")["members"] == ["UBOT", "U1"]
    client.conversations_archive(channel="C2")
    assert error_of(lambda: client.conversations_archive(channel="C2")) == "already_archived"
    assert slack.channel("C2")["is_archived"]
    client.conversations_unarchive(channel="C2")
    client.conversations_leave(channel="C2")
    assert error_of(lambda: client.conversations_info(channel="C2")) == "channel_not_found"
    names = [
        c["name"]
        for c in client.conversations_list(
            types="public_channel,private_channel", exclude_archived=True
        )["channels"]
    ]
    assert names == ["general", "elsewhere"]


def test_lists_paginate_with_cursors(slack: FakeSlack, client: WebClient) -> None:
    for n in range(5):
        slack.add_user(f"UX{n}", name=f"x{n}")
    client.conversations_invite(channel="C1", users=[f"UX{n}" for n in range(5)])
    seen, cursor, pages = [], None, 0
    while True:
        page = client.conversations_members(channel="C1", limit=3, cursor=cursor)
        seen += page["members"]
        pages += 1
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and seen == slack.channel("C1")["members"]
    users = [u["id"] for p in client.users_list(limit=4) for u in p["members"]]
    assert len(users) == len(set(users)) == 10
    assert (
        error_of(lambda: client.conversations_members(channel="C1", cursor="bogus"))
        == "invalid_cursor"
    )


def test_history_and_replies_paginate(slack: FakeSlack, client: WebClient) -> None:
    tops = [client.chat_postMessage(channel="C1", text=f"m{n}")["ts"] for n in range(5)]
    replies = [
        client.chat_postMessage(channel="C1", text=f"r{n}", thread_ts=tops[0])["ts"]
        for n in range(3)
    ]
    first = client.conversations_history(channel="C1", limit=2)
    assert [m["text"] for m in first["messages"]] == ["m4", "m3"] and first["has_more"]
    second = client.conversations_history(
        channel="C1", limit=2, cursor=first["response_metadata"]["next_cursor"]
    )
    third = client.conversations_history(
        channel="C1", limit=2, cursor=second["response_metadata"]["next_cursor"]
    )
    assert [m["text"] for m in second["messages"] + third["messages"]] == ["m2", "m1", "m0"]
    assert not third["has_more"] and third["response_metadata"]["next_cursor"] == ""
    assert third["messages"][-1]["reply_count"] == 3
    newer = client.conversations_history(channel="C1", oldest=tops[2])["messages"]
    assert [m["text"] for m in newer] == ["m4", "m3"]

    page = client.conversations_replies(channel="C1", ts=tops[0], limit=2)
    assert [m["ts"] for m in page["messages"]] == [tops[0], replies[0]] and page["has_more"]
    rest = client.conversations_replies(
        channel="C1", ts=tops[0], cursor=page["response_metadata"]["next_cursor"]
    )
    assert [m["ts"] for m in rest["messages"]] == replies[1:] and not rest["has_more"]
    assert (
        error_of(lambda: client.conversations_replies(channel="C1", ts="1.000001"))
        == "thread_not_found"
    )
    assert error_of(lambda: client.conversations_history(channel="C4")) == "not_in_channel"


def test_metadata_comes_back_only_when_asked(slack: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(
        channel="C1", text="card", metadata={"event_type": "case", "event_payload": {"id": 7}}
    )
    plain = client.conversations_history(channel="C1")["messages"][0]
    full = client.conversations_history(channel="C1", include_all_metadata=True)["messages"][0]
    assert "metadata" not in plain and full["metadata"]["event_payload"] == {"id": 7}


def test_pins(slack: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C1", text="pin me")["ts"]
    client.pins_add(channel="C1", timestamp=ts)
    assert slack.pins("C1") == [ts]
    assert error_of(lambda: client.pins_add(channel="C1", timestamp=ts)) == "already_pinned"
    assert (
        error_of(lambda: client.pins_add(channel="C1", timestamp="1.000001")) == "message_not_found"
    )
    assert [i["message"]["ts"] for i in client.pins_list(channel="C1")["items"]] == [ts]


def test_users_and_auth(slack: FakeSlack, client: WebClient) -> None:
    assert client.auth_test()["user_id"] == "UBOT"
    user = client.users_info(user="U2")["user"]
    assert user["is_admin"] and user["profile"]["display_name"] == "bob"
    assert error_of(lambda: client.users_info(user="U404")) == "user_not_found"
    assert (
        error_of(lambda: WebClient(token="xoxb-wrong", base_url=slack.url).auth_test())
        == "invalid_auth"
    )
    assert error_of(lambda: WebClient(base_url=slack.url).auth_test()) == "not_authed"
    assert error_of(lambda: client.api_call("chat.dance")) == "unknown_method"
    assert [c.token for c in slack.calls[-3:-1]] == ["xoxb-wrong", None]


# -- views ------------------------------------------------------------------------------------
MODAL = {
    "type": "modal",
    "callback_id": "intake",
    "private_metadata": "{}",
    "title": {"type": "plain_text", "text": "File a case"},
    "submit": {"type": "plain_text", "text": "File"},
    "blocks": [
        {
            "type": "input",
            "block_id": "summary",
            "label": {"type": "plain_text", "text": "Summary"},
            "element": {"type": "plain_text_input", "action_id": "value"},
        }
    ],
}


def test_views_open_uses_each_trigger_once(slack: FakeSlack, client: WebClient) -> None:
    view = client.views_open(trigger_id="t1", view=MODAL)["view"]
    assert view["id"].startswith("V") and view["callback_id"] == "intake" and view["hash"]
    assert slack.views[view["id"]]["state"] == {"values": {}}
    assert (
        error_of(lambda: client.views_open(trigger_id="t1", view=MODAL)) == "exchanged_trigger_id"
    )
    slack.expire_trigger("t2")
    assert error_of(lambda: client.views_open(trigger_id="t2", view=MODAL)) == "expired_trigger_id"
    assert error_of(lambda: client.views_open(view=MODAL)) == "invalid_arguments"
    no_submit = {k: v for k, v in MODAL.items() if k != "submit"}
    assert (
        error_of(lambda: client.views_open(trigger_id="t3", view=no_submit)) == "invalid_arguments"
    )
    second = client.views_open(trigger_id="t3", view={**MODAL, "callback_id": "other"})["view"]
    assert [v["id"] for v in slack.opened_views()] == [view["id"], second["id"]]


def test_views_update_checks_the_hash(slack: FakeSlack, client: WebClient) -> None:
    view = client.views_open(trigger_id="t1", view=MODAL)["view"]
    changed = {**MODAL, "private_metadata": "changed"}
    updated = client.views_update(view_id=view["id"], view=changed, hash=view["hash"])["view"]
    assert updated["private_metadata"] == "changed" and updated["hash"] != view["hash"]
    assert (
        error_of(lambda: client.views_update(view_id=view["id"], view=MODAL, hash=view["hash"]))
        == "hash_conflict"
    )
    assert error_of(lambda: client.views_update(view_id="V404", view=MODAL)) == "not_found"
    assert slack.opened_views()[0]["private_metadata"] == "changed"
    home = {"type": "home", "blocks": [section("welcome")]}
    client.views_publish(user_id="U1", view=home)
    assert slack.views["home:U1"]["blocks"] == [section("welcome")]


# -- faults -----------------------------------------------------------------------------------
def test_injected_429_carries_retry_after(slack: FakeSlack, client: WebClient) -> None:
    slack.inject("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel="C1", text="x")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "7"
    assert info.value.response["error"] == "ratelimited"
    client.chat_postMessage(channel="C1", text="x")  # consumed after one match
    assert len(slack.messages("C1")) == 1 and len(slack.calls_to("chat.postMessage")) == 2


def test_injected_server_errors_and_slack_errors(slack: FakeSlack, client: WebClient) -> None:
    slack.inject("*", status=503, times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as info:
            client.auth_test()
        assert info.value.response.status_code == 503
    client.auth_test()
    slack.inject("conversations.create", error="name_taken", times=None)
    for _ in range(2):
        assert error_of(lambda: client.conversations_create(name="fresh")) == "name_taken"
    slack.reset_faults()
    client.conversations_create(name="fresh")


def test_when_restricts_a_rule_to_matching_calls(slack: FakeSlack, client: WebClient) -> None:
    slack.inject(
        "chat.postMessage", error="channel_not_found", when=lambda params: params["channel"] == "U2"
    )
    client.chat_postMessage(channel="U1", text="fine")
    assert error_of(lambda: client.chat_postMessage(channel="U2", text="x")) == "channel_not_found"
    client.chat_postMessage(channel="U2", text="fine now")


def test_delay_and_latency_slow_calls_down(slack: FakeSlack, client: WebClient) -> None:
    slack.inject("auth.test", delay=0.2)
    started = time.monotonic()
    assert client.auth_test()["ok"]
    assert time.monotonic() - started >= 0.2
    slack.set_latency(0.1)
    started = time.monotonic()
    client.auth_test()
    client.auth_test()
    assert time.monotonic() - started >= 0.2
    slack.set_latency(0)


def test_rate_limit_retry_handler_retries_once(slack: FakeSlack) -> None:
    client = WebClient(token=TOKEN, base_url=slack.url, timeout=5)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    slack.inject("chat.postMessage", status=429, retry_after=0)
    assert client.chat_postMessage(channel="C1", text="eventually")["ok"]
    calls = [c for c in slack.calls if c.method == "chat.postMessage"]
    assert len(calls) == 2 and calls[1].at >= calls[0].at
    assert [m["text"] for m in slack.messages("C1")] == ["eventually"]


# -- the rest ---------------------------------------------------------------------------------
def test_concurrent_posts_get_unique_increasing_ts(slack: FakeSlack, client: WebClient) -> None:
    results: list[str] = []

    def post(n: int) -> None:
        results.append(client.chat_postMessage(channel="C1", text=f"{n}")["ts"])

    threads = [threading.Thread(target=post, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 20
    assert [m["ts"] for m in slack.messages("C1")] == sorted(results, key=float)


def test_response_urls_are_recorded(slack: FakeSlack) -> None:
    reply = WebhookClient(f"{slack.respond_url}abc").send(text="done", response_type="ephemeral")
    assert reply.status_code == 200
    [answer] = slack.responses()
    assert answer["id"] == "abc" and answer["body"]["text"] == "done"


def test_reset_forgets_everything(slack: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(channel="C1", text="x")
    slack.inject("*", status=500, times=None)
    slack.reset()
    assert slack.calls == [] and slack.views == {}
    assert client.auth_test()["ok"]
    with pytest.raises(KeyError):
        slack.channel("C1")


# -- functions (Workflow Builder steps) -------------------------------------------------------
def test_a_step_execution_completes_once_with_its_own_token(slack: FakeSlack) -> None:
    execution_id, token = slack.start_function("file_swarm_case", required_outputs=["n"])
    step = WebClient(token=token, base_url=slack.url, timeout=5)
    step.chat_postMessage(channel="C1", text="posted with the execution's token")
    assert error_of(
        lambda: step.functions_completeSuccess(function_execution_id=execution_id, outputs={})
    ) == ("parameter_validation_failed")
    step.functions_completeSuccess(function_execution_id=execution_id, outputs={"n": "1"})
    assert slack.execution(execution_id)["outputs"] == {"n": "1"}
    assert (
        error_of(
            lambda: step.functions_completeError(function_execution_id=execution_id, error="x")
        )
        == "function_execution_not_found"
    )
    assert (
        error_of(lambda: step.functions_completeSuccess(function_execution_id="Fx0", outputs={}))
        == "function_execution_not_found"
    )
    forged = WebClient(token="xwfp-forged", base_url=slack.url, timeout=5)
    assert error_of(lambda: forged.auth_test()) == "invalid_auth"


def test_a_failed_step_keeps_its_reason(slack: FakeSlack, client: WebClient) -> None:
    execution_id, _token = slack.start_function("file_swarm_case")
    client.functions_completeError(function_execution_id=execution_id, error="bad case number")
    assert slack.execution(execution_id)["state"] == "failed"
    assert slack.execution(execution_id)["error"] == "bad case number"
