"""The SlackGateway the workflows talk through, on the real slack_sdk WebClient."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.blocks.card import card_overflow, case_card, case_card_text
from bot.ids import CARD_EVENT_TYPE
from storage.uow import transaction_open
from workflows.errors import SlackRefused, SlackUnavailable
from workflows.snapshot import CaseSnapshot
from workflows.text import escape, split

log = logging.getLogger(__name__)

T = TypeVar("T")
# Per-user invite errors that need no action: the user is already there, or is the bot itself.
INVITED_ALREADY = {"already_in_channel", "cant_invite_self"}
# Errors that mean "not now" rather than "never": kept and retried later.
TRANSIENT = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}
CANT_REACH_CHANNEL = {"channel_not_found", "not_in_channel", "user_not_in_channel", "is_archived"}


class SlackCallsInTransaction:
    """Slack calls made while the calling thread held a database transaction.

    The rule is that none is ever made: a slow Slack would hold the transaction (and on
    SQLite the one write lock) for as long as it takes. Each one is logged with where it came
    from; the test suite fails on any.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[str] = []

    def record(self, method: str) -> None:
        where = "".join(traceback.format_stack(limit=12)[:-2])
        log.error("Slack call %s made inside an open database transaction:\n%s", method, where)
        with self._lock:
            self.seen.append(f"{method}\n{where}")

    def clear(self) -> list[str]:
        with self._lock:
            seen, self.seen = self.seen, []
        return seen


CALLS_IN_TRANSACTION = SlackCallsInTransaction()


class GuardedWebClient(WebClient):
    """A WebClient that reports any call made while this thread holds a transaction."""

    def api_call(self, api_method: str, **kwargs: Any) -> Any:  # type: ignore[override]
        if transaction_open():
            CALLS_IN_TRANSACTION.record(api_method)
        return super().api_call(api_method, **kwargs)

    @classmethod
    def like(cls, client: WebClient) -> GuardedWebClient:
        """The same client (token, URL, timeout, retries), guarded."""
        if isinstance(client, GuardedWebClient):
            return client
        return cls(
            token=client.token,
            base_url=client.base_url,
            timeout=client.timeout,
            ssl=client.ssl,
            proxy=client.proxy,
            headers=dict(client.headers),
            team_id=client.default_params.get("team_id"),
            logger=client.logger,
            retry_handlers=list(client.retry_handlers),
        )


def web_client(
    token: str | None, base_url: str, *, timeout: int = 10, retries: int = 3
) -> WebClient:
    """A WebClient on `base_url` that retries 429 (honouring Retry-After), 5xx and resets."""
    if not base_url.endswith("/"):
        base_url += "/"
    return GuardedWebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=retries),
            RateLimitErrorRetryHandler(max_retry_count=retries),
            ServerErrorRetryHandler(max_retry_count=retries),
        ],
    )


class AdminCache:
    """Who is a workspace admin, remembered for a few minutes."""

    def __init__(self, ttl: float = 300.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, bool]] = {}

    def get(self, user_id: str, load: Callable[[str], bool]) -> bool:
        now = time.monotonic()
        with self._lock:
            hit = self._seen.get(user_id)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = load(user_id)
        with self._lock:
            self._seen[user_id] = (now, value)
        return value


class ChannelAccess:
    """Which channels are private and who is in them, remembered for a short while.

    Membership changes are picked up after `ttl` seconds; a search in between is judged on what
    Slack said at most that long ago.
    """

    def __init__(self, ttl: float = 120.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._private: dict[str, tuple[float, bool]] = {}
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    def _cached(
        self, table: dict[str, tuple[float, Any]], key: str, load: Callable[[], Any]
    ) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = table.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = load()
        with self._lock:
            table[key] = (now, value)
        return value

    def is_private(self, channel_id: str, load: Callable[[], bool]) -> bool:
        return self._cached(self._private, channel_id, load)

    def members(self, channel_id: str, load: Callable[[], frozenset[str]]) -> frozenset[str]:
        return self._cached(self._members, channel_id, load)


class WebSlack:
    """SlackGateway over one WebClient."""

    def __init__(
        self, client: WebClient, admins: AdminCache, channels: ChannelAccess | None = None
    ) -> None:
        self.client = GuardedWebClient.like(client)
        self.admins = admins
        self.channels = channels or ChannelAccess()

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """Run a Web API call; Slack being unreachable becomes SlackUnavailable."""
        try:
            return call()
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            status = exc.response.status_code if exc.response is not None else None
            if error in TRANSIENT or (status and status >= 500) or status == 429:
                raise SlackUnavailable(f"Slack did not take {what} ({error or status})") from exc
            raise
        except (SlackClientError, OSError) as exc:
            raise SlackUnavailable(f"Slack did not answer {what} ({exc})") from exc

    def post_case_card(self, card: CaseSnapshot) -> str:
        payload: dict[str, Any] = {
            "channel": card.channel_id,
            "text": case_card_text(card),
            "blocks": case_card(card),
            "metadata": {
                "event_type": CARD_EVENT_TYPE,
                "event_payload": {"case_id": card.case_id, "case_number": card.case_number},
            },
            "unfurl_links": False,
        }
        try:
            response = self._call("the case card", lambda: self.client.chat_postMessage(**payload))
        except SlackApiError as exc:
            if exc.response.get("error") != "not_in_channel":
                raise SlackUnavailable(
                    f"card for case {card.case_number} not posted in {card.channel_id}: "
                    f"{exc.response.get('error')}"
                ) from exc
            # A public channel the bot was never added to: join it, then post.
            self._call(
                "joining the swarm channel",
                lambda: self.client.conversations_join(channel=card.channel_id),
            )
            response = self._call("the case card", lambda: self.client.chat_postMessage(**payload))
        ts = response["ts"]
        return ts

    def card_continuation(self, card: CaseSnapshot) -> list[str]:
        overflow = card_overflow(card)
        if not overflow:
            return []
        return [f">>> {escape(piece)}" for piece in split(overflow, 2800)]

    def find_case_card(self, card: CaseSnapshot) -> str | None:
        oldest = f"{card.created_at.timestamp() - 60:.6f}" if card.created_at else "0"
        try:
            response = self.client.conversations_history(
                channel=card.channel_id, oldest=oldest, limit=200, include_all_metadata=True
            )
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.info("could not look for an earlier card of case %s: %s", card.case_number, exc)
            return None
        for message in response.get("messages", []):
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if (
                metadata.get("event_type") == CARD_EVENT_TYPE
                and payload.get("case_id") == card.case_id
            ):
                return message["ts"]
        return None

    def update_case_card(self, card: CaseSnapshot) -> None:
        if not card.thread_ts:
            return
        self._refusable(
            "the card update",
            lambda: self.client.chat_update(
                channel=card.channel_id,
                ts=card.thread_ts,
                text=case_card_text(card),
                blocks=case_card(card),
            ),
        )

    def post_in_thread(self, channel_id: str, thread_ts: str, text: str) -> str:
        response = self._refusable(
            "a thread reply",
            lambda: self.client.chat_postMessage(
                channel=channel_id, thread_ts=thread_ts, text=text, unfurl_links=False
            ),
        )
        assert response is not None
        return response["ts"]

    def permalink(self, channel_id: str, ts: str) -> str | None:
        try:
            return self.client.chat_getPermalink(channel=channel_id, message_ts=ts)["permalink"]
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.info("no permalink for %s/%s: %s", channel_id, ts, exc)
            return None

    def tell(self, user_id: str, text: str, *, channel_id: str | None = None) -> None:
        if channel_id and not channel_id.startswith("D"):
            try:
                self._call(
                    "an ephemeral message",
                    lambda: self.client.chat_postEphemeral(
                        channel=channel_id, user=user_id, text=text
                    ),
                )
                return
            except SlackApiError as exc:
                error = str(exc.response.get("error") or "unknown_error")
                if error not in CANT_REACH_CHANNEL:
                    raise SlackRefused("an ephemeral message", error) from exc
        self._refusable(
            "a direct message",
            lambda: self.client.chat_postMessage(channel=user_id, text=text, unfurl_links=False),
        )

    def is_workspace_admin(self, user_id: str) -> bool:
        def load(uid: str) -> bool:
            try:
                user = self.client.users_info(user=uid)["user"]
            except SlackApiError as exc:
                log.info("users.info %s: %s", uid, exc.response.get("error"))
                return False
            return bool(user.get("is_admin") or user.get("is_owner"))

        return self.admins.get(user_id, load)

    def user_by_email(self, email: str) -> str | None:
        try:
            user = self._call(
                "a user lookup", lambda: self.client.users_lookupByEmail(email=email)
            )["user"]
        except SlackApiError as exc:
            if exc.response.get("error") == "users_not_found":
                return None
            raise
        return None if user.get("deleted") else user["id"]

    def _private(self, channel_id: str) -> bool:
        try:
            info = self._call(
                "channel info", lambda: self.client.conversations_info(channel=channel_id)
            )
        except SlackApiError as exc:
            # A private channel the bot is not in is "not found": nobody reads it through us.
            log.info("conversations.info %s: %s", channel_id, exc.response.get("error"))
            return True
        channel = info["channel"]
        return bool(channel.get("is_private") or channel.get("is_im") or channel.get("is_mpim"))

    def is_public(self, channel_id: str) -> bool:
        return not self.channels.is_private(channel_id, lambda: self._private(channel_id))

    def user_name(self, user_id: str) -> str | None:
        try:
            user = self._call("user info", lambda: self.client.users_info(user=user_id))["user"]
        except (SlackApiError, SlackUnavailable) as exc:
            log.info("users.info %s: %s", user_id, exc)
            return None
        profile = user.get("profile") or {}
        return (
            profile.get("display_name")
            or profile.get("real_name")
            or user.get("real_name")
            or user.get("name")
        )

    def can_read(self, user_id: str, channel_id: str) -> bool:
        def members() -> frozenset[str]:
            found: set[str] = set()
            cursor = None
            while True:
                try:
                    page = self._call(
                        "channel members",
                        lambda c=cursor: self.client.conversations_members(
                            channel=channel_id, limit=1000, cursor=c
                        ),
                    )
                except SlackApiError as exc:
                    log.info("conversations.members %s: %s", channel_id, exc.response.get("error"))
                    return frozenset()
                found.update(page.get("members") or [])
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return frozenset(found)

        if self.is_public(channel_id):
            return True
        return user_id in self.channels.members(channel_id, members)

    def _pages(self, what: str, call: Callable[[str | None], Any]) -> Iterator[dict[str, Any]]:
        """Every message of a cursor-paginated read; 429s wait out Retry-After in the client."""
        cursor: str | None = None
        while True:
            page = self._call(what, lambda c=cursor: call(c))
            yield from page.get("messages") or []
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return

    def thread_replies(self, channel_id: str, thread_ts: str) -> Iterator[dict[str, Any]]:
        return self._pages(
            "thread replies",
            lambda cursor: self.client.conversations_replies(
                channel=channel_id, ts=thread_ts, limit=200, cursor=cursor
            ),
        )

    def channel_history(
        self, channel_id: str, oldest: str | None = None
    ) -> Iterator[dict[str, Any]]:
        return self._pages(
            "channel history",
            lambda cursor: self.client.conversations_history(
                channel=channel_id, oldest=oldest or "0", limit=200, cursor=cursor
            ),
        )

    def _refusable(
        self, what: str, call: Callable[[], T], fine: frozenset[str] = frozenset()
    ) -> T | None:
        """Run a call; Slack's refusals become SlackRefused, except `fine` ones (-> None)."""
        try:
            return self._call(what, call)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "unknown_error")
            if error in fine:
                return None
            raise SlackRefused(what, error) from exc

    def upload_file(
        self,
        channel_id: str,
        data: bytes,
        *,
        filename: str,
        title: str,
        alt_text: str,
        comment: str = "",
    ) -> None:
        # files_upload_v2: files.getUploadURLExternal, the upload, files.completeUploadExternal.
        self._refusable(
            f"the file {filename}",
            lambda: self.client.files_upload_v2(
                channel=channel_id,
                file=data,
                filename=filename,
                title=title,
                alt_txt=alt_text[:1000],
                initial_comment=comment or None,
            ),
        )

    def create_channel(self, name: str, *, private: bool) -> str:
        response = self._refusable(
            f"creating #{name}",
            lambda: self.client.conversations_create(name=name, is_private=private),
        )
        assert response is not None
        return response["channel"]["id"]

    def rename_channel(self, channel_id: str, name: str) -> None:
        self._refusable(
            f"renaming the channel to #{name}",
            lambda: self.client.conversations_rename(channel=channel_id, name=name),
        )

    def describe_channel(self, channel_id: str, *, topic: str, purpose: str) -> None:
        self._refusable(
            "the channel topic",
            lambda: self.client.conversations_setTopic(channel=channel_id, topic=topic),
        )
        self._refusable(
            "the channel purpose",
            lambda: self.client.conversations_setPurpose(channel=channel_id, purpose=purpose),
        )

    def invite(self, channel_id: str, user_ids: list[str]) -> dict[str, str]:
        users = list(dict.fromkeys(u for u in user_ids if u))
        if not users:
            return {}
        try:
            # force: invite everyone who can be, and list the others instead of failing.
            response = self._call(
                "the invitations",
                lambda: self.client.conversations_invite(
                    channel=channel_id, users=users, force=True
                ),
            )
            errors = response.get("errors") or []
        except SlackApiError as exc:
            errors = exc.response.get("errors") or []
            if not errors and exc.response.get("error") in INVITED_ALREADY:
                return {}
            if not errors:
                raise SlackRefused("the invitations", str(exc.response.get("error"))) from exc
        failed = {e.get("user"): e.get("error") for e in errors if e.get("user")}
        return {u: str(e) for u, e in failed.items() if e not in INVITED_ALREADY}

    def post_message(self, channel_id: str, text: str) -> str:
        def post() -> Any:
            return self.client.chat_postMessage(channel=channel_id, text=text, unfurl_links=False)

        try:
            response = self._call("a message", post)
        except SlackApiError as exc:
            if exc.response.get("error") != "not_in_channel":
                error = str(exc.response.get("error"))
                raise SlackRefused(f"a message in <#{channel_id}>", error) from exc
            # A public channel the bot is not in yet: join it, then post.
            self._refusable(
                f"joining <#{channel_id}>",
                lambda: self.client.conversations_join(channel=channel_id),
            )
            response = self._refusable(f"a message in <#{channel_id}>", post)
        assert response is not None
        return response["ts"]

    def pin(self, channel_id: str, ts: str) -> None:
        self._refusable(
            "the pin",
            lambda: self.client.pins_add(channel=channel_id, timestamp=ts),
            fine=frozenset({"already_pinned"}),
        )

    def archive_channel(self, channel_id: str) -> None:
        self._refusable(
            "archiving the channel",
            lambda: self.client.conversations_archive(channel=channel_id),
            fine=frozenset({"already_archived"}),
        )

    def unarchive_channel(self, channel_id: str) -> None:
        self._refusable(
            "unarchiving the channel",
            lambda: self.client.conversations_unarchive(channel=channel_id),
            fine=frozenset({"not_archived"}),
        )
