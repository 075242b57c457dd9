"""Messages the swarm owes a thread, a channel or a person: stored first, sent after commit.

A post Slack does not take now (429s/5xx exhausted, a timeout) stays owed and is sent by the
leader's `posts:retry` job, also after a restart; one Slack refuses for good (an archived or
unknown channel) is given up and logged rather than retried forever.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from storage.uow import UnitOfWorkFactory
from workflows.clock import Clock
from workflows.errors import SlackUnavailable, SwarmError
from workflows.ports import SlackGateway

log = logging.getLogger(__name__)

USER_PREFIXES = ("U", "W")


def deliver(
    uow_factory: UnitOfWorkFactory,
    slack: SlackGateway,
    clock: Clock,
    ids: Sequence[int] | None = None,
) -> list[str]:
    """Send owed posts (these `ids`, or all); return what could not be sent now."""
    with uow_factory() as uow:
        owed = [(p.id, p.channel_id, p.thread_ts, p.text) for p in uow.cases.unsent_posts(ids=ids)]
    problems: list[str] = []
    for post_id, channel_id, thread_ts, text in owed:
        error: str | None = None
        given_up = False
        try:
            if channel_id.startswith(USER_PREFIXES):
                slack.tell(channel_id, text)
            elif thread_ts:
                slack.post_in_thread(channel_id, thread_ts, text)
            else:
                slack.post_message(channel_id, text)
        except SlackUnavailable as exc:
            error = str(exc)
        except SwarmError as exc:
            error, given_up = str(exc), True
        with uow_factory() as uow:
            post = uow.cases.unsent_posts(ids=[post_id])
            if not post:
                continue
            post[0].attempts += 1
            if error is None:
                post[0].sent_at = clock.now()
            else:
                post[0].last_error = error[:500]
                if given_up:
                    post[0].given_up_at = clock.now()
                problems.append(error)
                log.warning(
                    "post to %s %s: %s",
                    channel_id,
                    "given up" if given_up else "kept for a retry",
                    error,
                )
            uow.commit()
    return problems


def deliver_owed(uow_factory: UnitOfWorkFactory, slack: SlackGateway, clock: Clock) -> int:
    """The `posts:retry` sweep: send everything still owed; return how many went out."""
    with uow_factory() as uow:
        before = len(uow.cases.unsent_posts())
    if not before:
        return 0
    problems = deliver(uow_factory, slack, clock)
    return before - len(problems)
