"""Messages the swarm owes a thread, a channel or a person: stored first, sent after commit.

Each owed post is sent on its own: a sender takes it with a lease (a conditional update of
`next_attempt_at`), so the request that made it and the leader's `posts:retry` sweep never
both send it. A post Slack does not take now (429s/5xx exhausted, a timeout) backs off, alone,
and is tried again later, also after a restart; one Slack refuses for good (an archived or
unknown channel) is given up and logged. Neither holds up the posts owed after it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from workflows.access import can_see, channels_of
from workflows.errors import SlackUnavailable, SwarmError
from workflows.ports import SlackGateway
from workflows.services import Services
from workflows.snapshot import CaseSnapshot

log = logging.getLogger(__name__)

USER_PREFIXES = ("U", "W")
# Kinds of owed work.
POST = "post"  # a message in channel_id (a thread when thread_ts is set; a user id: a DM)
THREAD = "thread"  # a reply in the case's thread, sent once the case's card is posted
CARD = "card"  # a re-render of the case's card, from the case as it is when sent
# A message that links to the case's thread: sent once the card has a permalink, which
# takes the place of PERMALINK in its text.
LINK = "link"
PERMALINK = "{permalink}"
# A sender holds a post this long; a process that dies meanwhile leaves it to the next one.
LEASE = timedelta(minutes=2)
# Waits after the 1st, 2nd, ... transient failure of one post; the last one repeats.
BACKOFF = (
    timedelta(seconds=30),
    timedelta(minutes=1),
    timedelta(minutes=2),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
)
# After this many posts in a row found Slack unavailable, a run stops: Slack is down, and
# the rest wait for the next run instead of each spending the client's retries.
OUTAGE_AFTER = 3


@dataclass(frozen=True)
class _Owed:
    id: int
    kind: str
    channel_id: str
    via_channel_id: str | None
    thread_ts: str | None
    text: str
    attempts: int
    card: CaseSnapshot | None = None
    # For a DM about a case: the channels the case lives in, which the person must read (the
    # one access rule, checked when it is sent: membership changes while a post waits).
    case_channels: tuple[str, ...] = ()
    case_number: str = ""


def backoff(attempts: int) -> timedelta:
    """How long a post waits after its `attempts`-th transient failure."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]


def deliver(
    services: Services,
    ids: Sequence[int] | None = None,
) -> list[str]:
    """Send owed posts that are due (these `ids`, or all); return what could not be sent now."""
    with services.uow.read() as uow:
        owed = [p.id for p in uow.cases.unsent_posts(ids=ids, due_by=services.clock.now())]
    problems: list[str] = []
    unavailable = 0
    index = 0
    while index < len(owed):
        post_id = owed[index]
        index += 1
        if unavailable >= OUTAGE_AFTER:
            left = len(owed) - index + 1
            problems.append(f"Slack is not answering; {left} more message(s) kept for later")
            log.warning("Slack unavailable: %d owed post(s) left for the next run", left)
            break
        post = _take(services, post_id)
        if post is None:
            continue
        error: str | None = None
        given_up = False
        try:
            _may_be_told(services.slack, post)
            _send(services.slack, post)
        except SlackUnavailable as exc:
            error = str(exc)
            unavailable += 1
        except SwarmError as exc:
            error, given_up = str(exc), True
        except Exception as exc:  # a bug must not cost the other posts their turn
            log.exception("owed post %s failed", post_id)
            error = f"{type(exc).__name__}: {exc}"
        else:
            unavailable = 0
        _settle(services, post, error, given_up)
        if error is not None:
            problems.append(error)
        else:
            # Posts held back behind this one (same case, same place) go now, in order.
            owed += [i for i in _waiting_behind(services, post_id) if i not in owed]
    return problems


def _waiting_behind(services: Services, post_id: int) -> list[int]:
    with services.uow.read() as uow:
        return list(uow.cases.posts_after(post_id=post_id))


def _take(services: Services, post_id: int) -> _Owed | None:
    """Claim one post and read what to send; None when it is not ours to send now."""
    now = services.clock.now()
    with services.uow() as uow:
        post = uow.cases.claim_post(post_id=post_id, now=now, until=now + LEASE)
        if post is None:
            return None
        thread_ts = post.thread_ts
        card = None
        if uow.cases.earlier_post_owed(post=post):
            # Posts of one case to one place go in the order they were owed.
            post.next_attempt_at = None
            uow.commit()
            return None
        if post.kind in (THREAD, CARD):
            case = uow.cases.get(post.case_id) if post.case_id is not None else None
            thread_ts = case.thread_ts if case is not None else None
            if case is None or thread_ts is None:
                # The card is not posted yet: wait for it, without counting an attempt.
                post.next_attempt_at = None
                uow.commit()
                return None
            if post.kind == CARD:
                card = CaseSnapshot.of(case, services.config)
        case_channels: tuple[str, ...] = ()
        case_number = ""
        if post.channel_id.startswith(USER_PREFIXES) and post.case_id is not None:
            case = uow.cases.get(post.case_id)
            if case is not None and post.channel_id != case.filer_id:
                case_channels = tuple(channels_of(case.channel_id, case.incident_channel_id))
                case_number = case.case_number
        text = post.text
        if post.kind == LINK:
            case = uow.cases.get(post.case_id) if post.case_id is not None else None
            if case is None or case.permalink is None:
                post.next_attempt_at = None  # waits for the card and its permalink
                uow.commit()
                return None
            text = text.replace(PERMALINK, case.permalink)
        owed = _Owed(
            post.id,
            post.kind,
            post.channel_id,
            post.via_channel_id,
            thread_ts,
            text,
            post.attempts,
            card,
            case_channels,
            case_number,
        )
        uow.commit()
    return owed


class NotAllowedToSee(SwarmError):
    """The person a DM is owed to may not see its case (a private channel they are not in)."""


def _may_be_told(slack: SlackGateway, post: _Owed) -> None:
    """NotAllowedToSee (given up, never sent) when the DM would show a case to someone who
    may not see it; SlackUnavailable (tried again later) when Slack cannot say."""
    if post.case_channels and not can_see(slack, post.channel_id, post.case_channels):
        raise NotAllowedToSee(
            f"{post.channel_id} may not see case {post.case_number} (not a member of its "
            "private channel): not sent"
        )


def _send(slack: SlackGateway, post: _Owed) -> None:
    if post.card is not None:
        slack.update_case_card(post.card)
    elif post.channel_id.startswith(USER_PREFIXES):
        slack.tell(post.channel_id, post.text, channel_id=post.via_channel_id)
    elif post.thread_ts:
        slack.post_in_thread(post.channel_id, post.thread_ts, post.text)
    else:
        slack.post_message(post.channel_id, post.text)


def _settle(
    services: Services,
    owed: _Owed,
    error: str | None,
    given_up: bool,
) -> None:
    """Record how one attempt went: sent, given up, or backing off."""
    now: datetime = services.clock.now()
    with services.uow() as uow:
        [post] = uow.cases.unsent_posts(ids=[owed.id]) or [None]
        if post is None:
            return
        post.attempts += 1
        if error is None:
            post.sent_at = now
            post.next_attempt_at = None
        else:
            post.last_error = error[:500]
            if given_up:
                post.given_up_at = now
                post.next_attempt_at = None
            else:
                post.next_attempt_at = now + backoff(post.attempts)
            log.warning(
                "post %s to %s %s: %s",
                owed.id,
                owed.channel_id,
                "given up" if given_up else f"kept, next try after {post.next_attempt_at}",
                error,
            )
        uow.commit()


def deliver_owed(services: Services) -> int:
    """The `posts:retry` sweep: send everything owed and due; return how many went out."""
    with services.uow.read() as uow:
        due = [p.id for p in uow.cases.unsent_posts(due_by=services.clock.now())]
    if not due:
        return 0
    deliver(services, due)
    with services.uow.read() as uow:
        return uow.cases.count_sent_posts(ids=due)
