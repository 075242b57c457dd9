"""Similar resolved cases and suggested experts, by sentence embeddings of the case record.

Every resolved case gets a vector of its whole record (summary, details, customer, root cause,
resolution, workaround and its thread's human messages); a new case is embedded from what the
filer wrote (summary, details, customer) and compared with them by cosine. Cases scoring below
`SIMILARITY_THRESHOLD` are not offered, so an unrelated case gets no answer rather than a bad
one. Embedding is slow work (tens of milliseconds): it runs in the background, never while
Slack waits for an ack.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update

from storage.models import Case, CaseStatus, Message
from storage.uow import UnitOfWorkFactory
from storage.vectors import VectorIndex, save_vector
from workflows.access import can_see, channels_of, require_can_see
from workflows.announcements import deliver
from workflows.cases import find_case
from workflows.clock import Clock
from workflows.embedding import (
    DIMENSION,
    MODEL_ID,
    QUERY_TOKENS,
    Embedder,
    ModelUnavailable,
    shared_embedder,
)
from workflows.ports import SlackGateway
from workflows.services import Services
from workflows.text import clip, escape

log = logging.getLogger(__name__)

# Cosine similarity a resolved case needs to be offered. Chosen on the evaluation set
# (tests/data/similar_cases.yaml, benchmarks/similar.py): at 0.45, recall@3 0.84 of the
# held-out repeats with 1 of 24 unrelated new cases offered anything; at 0.40, recall@3 0.89
# but 3 of 24 unrelated offered; at 0.50, none offered but recall@3 0.79.
SIMILARITY_THRESHOLD = 0.45
MAX_SIMILAR = 3
MAX_EXPERTS = 3
# Neighbours read before leaving out cases that are not resolved or not visible.
CANDIDATES = 40
# How much of each field goes into a record's text: the model reads 256 word pieces, so long
# details must not crowd out the resolution.
DETAILS_CHARS = 600
FIELD_CHARS = 400


def _clip(text: str | None, limit: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0]


def case_query(case: Case) -> str:
    """The text of a new case as the filer wrote it: what it is compared by."""
    parts = [case.summary, _clip(case.details, DETAILS_CHARS), case.customer or ""]
    return "\n".join(p for p in parts if p)


def case_document(case: Case, messages: Iterable[Message]) -> str:
    """The text of a case's whole record: fields first, then its thread's human messages."""
    parts = [
        case.summary,
        _clip(case.details, DETAILS_CHARS),
        case.customer or "",
        f"Root cause: {_clip(case.root_cause, FIELD_CHARS)}" if case.root_cause else "",
        f"Resolution: {_clip(case.resolution, FIELD_CHARS)}" if case.resolution else "",
        f"Workaround: {_clip(case.workaround, FIELD_CHARS)}" if case.workaround else "",
    ]
    for message in messages:
        # Only the case thread: an incident channel may be private, and its text must not
        # shape what other channels are offered.
        if message.is_bot or message.deleted_at is not None or not message.text.strip():
            continue
        if message.channel_id != case.channel_id:
            continue
        parts.append(_clip(message.text, FIELD_CHARS))
    return "\n".join(p for p in parts if p)


def first_line(text: str | None) -> str:
    """The first non-empty line of a text."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


@dataclass(frozen=True)
class SimilarCase:
    """A resolved case offered as an answer."""

    case_id: int
    case_number: str
    summary: str
    answer: str  # first line of the resolution, else of the root cause
    kb_link: str | None
    channel_id: str
    thread_ts: str | None
    permalink: str | None
    score: float


@dataclass(frozen=True)
class Expert:
    """Someone who resolved, claimed or first answered one of the similar cases."""

    user_id: str
    cases: int


@dataclass(frozen=True)
class Suggestions:
    cases: tuple[SimilarCase, ...] = ()
    experts: tuple[Expert, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.cases)


def _experts(found: Sequence[tuple[Case, float]], skip: set[str]) -> tuple[Expert, ...]:
    weight: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for case, score in found:
        people = {case.resolved_by, case.assignee_id, case.first_responder_id} - {None}
        for user_id in people:
            if user_id in skip:
                continue
            assert user_id is not None
            weight[user_id] += score
            count[user_id] += 1
    ranked = sorted(weight, key=lambda u: (-count[u], -weight[u], u))
    return tuple(Expert(u, count[u]) for u in ranked[:MAX_EXPERTS])


class SimilarCases:
    """The process's embedder and vector index: keeps vectors current and finds similar cases."""

    def __init__(
        self, embedder: Embedder | None = None, *, threshold: float = SIMILARITY_THRESHOLD
    ) -> None:
        self.embedder = embedder or shared_embedder()
        self.index = VectorIndex(MODEL_ID, DIMENSION)
        self.threshold = threshold

    def count_due(self, uow_factory: UnitOfWorkFactory, *, everything: bool = False) -> int:
        """How many resolved cases are owed a vector; `everything` marks them all owed first."""
        with uow_factory() as uow:
            resolved = Case.status == CaseStatus.RESOLVED
            if everything:
                uow.session.execute(
                    update(Case)
                    .where(resolved)
                    .values(vector_due_at=func.coalesce(Case.resolved_at, Case.updated_at))
                )
                uow.commit()
            return int(
                uow.session.scalar(
                    select(func.count())
                    .select_from(Case)
                    .where(resolved, Case.vector_due_at.is_not(None))
                )
                or 0
            )

    def embed_due(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        *,
        limit: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Make the vectors owed (resolved cases whose record changed); return how many."""
        with uow_factory() as uow:
            query = (
                select(Case.id)
                .where(Case.vector_due_at.is_not(None), Case.status == CaseStatus.RESOLVED)
                .order_by(Case.vector_due_at, Case.id)
            )
            if limit is not None:
                query = query.limit(limit)
            case_ids = list(uow.session.scalars(query))
        done = 0
        for case_id in case_ids:
            if self.embed_case(uow_factory, clock, case_id):
                done += 1
            if progress is not None:
                progress(1)
        return done

    def embed_case(self, uow_factory: UnitOfWorkFactory, clock: Clock, case_id: int) -> bool:
        """Embed one case's record now (no transaction stays open while the model runs)."""
        with uow_factory() as uow:
            case = uow.cases.get(case_id)
            if case is None or case.status is not CaseStatus.RESOLVED:
                return False
            messages = uow.session.scalars(
                select(Message).where(Message.case_id == case_id).order_by(Message.ts)
            ).all()
            text = case_document(case, messages)
            due, team_id = case.vector_due_at, case.team_id
        vector = self.embedder.embed(text)
        now = clock.now()
        with uow_factory() as uow:
            save_vector(
                uow.session,
                case_id=case_id,
                team_id=team_id,
                model=MODEL_ID,
                vector=vector,
                embedded_at=now,
            )
            # Cleared only if the record did not change meanwhile; else it stays owed.
            owed = Case.vector_due_at.is_(None) if due is None else Case.vector_due_at == due
            uow.session.execute(
                update(Case).where(Case.id == case_id, owed).values(vector_due_at=None)
            )
            uow.commit()
        self.index.put(case_id, team_id, vector)
        return True

    def similar_to_text(
        self,
        uow_factory: UnitOfWorkFactory,
        *,
        team_id: str,
        text: str,
        visible: Callable[[Case], bool],
        exclude_case: int | None = None,
        exclude_users: Iterable[str] = (),
        limit: int = MAX_SIMILAR,
    ) -> Suggestions:
        """Resolved cases similar to a text that `visible` lets through, with their experts."""
        with uow_factory() as uow:
            self.index.refresh(uow.session)
        if not self.index.has_team(team_id):
            return Suggestions()  # nothing resolved yet: no need to run the model
        vector = self.embedder.embed(text, max_tokens=QUERY_TOKENS)
        with uow_factory() as uow:
            exclude = [exclude_case] if exclude_case is not None else []
            neighbours = [
                n
                for n in self.index.nearest(
                    team_id, vector, k=max(CANDIDATES, limit), exclude=exclude
                )
                if n.score >= self.threshold
            ]
            if not neighbours:
                return Suggestions()
            by_id = {
                c.id: c
                for c in uow.session.scalars(
                    select(Case).where(Case.id.in_([n.case_id for n in neighbours]))
                )
            }
        found: list[tuple[Case, float]] = []
        for neighbour in neighbours:
            case = by_id.get(neighbour.case_id)
            if case is None or case.team_id != team_id or case.status is not CaseStatus.RESOLVED:
                continue
            if not visible(case):
                continue
            found.append((case, neighbour.score))
            if len(found) == limit:
                break
        cases = tuple(
            SimilarCase(
                case_id=case.id,
                case_number=case.case_number,
                summary=case.summary,
                answer=first_line(case.resolution) or first_line(case.root_cause),
                kb_link=case.kb_link,
                channel_id=case.channel_id,
                thread_ts=case.thread_ts,
                permalink=case.permalink,
                score=score,
            )
            for case, score in found
        )
        return Suggestions(cases, _experts(found, set(exclude_users)))


# -- the swarm's use of it -----------------------------------------------------------------------
# A new case is offered similar cases in its thread for this long after filing (the
# `similar:offer` sweep catches up on those whose reply could not be worked out at once).
OFFER_WINDOW = timedelta(days=1)
SUMMARY_CHARS = 120
ANSWER_CHARS = 200


def readable_by_everyone_in(slack: SlackGateway, channel_id: str) -> Callable[[Case], bool]:
    """Whether every member of `channel_id` may read a case's record: its thread and incident
    channel (if any) are public, or are this very channel."""

    def open_to_them(channel: str | None) -> bool:
        return channel is None or channel == channel_id or slack.is_public(channel)

    return lambda case: open_to_them(case.channel_id) and open_to_them(case.incident_channel_id)


def readable_by(slack: SlackGateway, user_id: str) -> Callable[[Case], bool]:
    """Whether one user may see a case: the one rule of workflows.access."""

    def may(case: Case) -> bool:
        return can_see(slack, user_id, channels_of(case.channel_id, case.incident_channel_id))

    return may


def expert_names(slack: SlackGateway, suggestions: Suggestions) -> list[str]:
    """The suggested experts by name (never a mention: nobody is pinged); unknown ones left out."""
    names = []
    for expert in suggestions.experts:
        name = slack.user_name(expert.user_id)
        if name:
            names.append(name)
    return names


def offer_text(suggestions: Suggestions, names: Sequence[str], *, intro: str) -> str:
    """The similar cases and experts as one mrkdwn message (user text escaped)."""
    lines = [intro]
    for found in suggestions.cases:
        number = escape(found.case_number)
        link = f"<{found.permalink}|{number}>" if found.permalink else number
        line = f"• *{link}* {escape(clip(found.summary, SUMMARY_CHARS))}"
        if found.answer:
            line += f" — _{escape(clip(found.answer, ANSWER_CHARS))}_"
        if found.kb_link:
            line += f" · <{escape(found.kb_link)}|knowledge article>"
        lines.append(line)
    if names:
        people = ", ".join(escape(n) for n in names)
        lines.append(
            f"*Suggested experts* (they resolved, claimed or first answered these): {people}. "
            "Leads can `/swarm assign` one of them."
        )
    return "\n".join(lines)


THREAD_INTRO = ":bulb: *Solved before?* Similar resolved cases:"


def offer_in_thread(services: Services, case_id: int) -> bool:
    """Reply once in a new case's thread with similar resolved cases and experts (owed work:
    stored as a pending post in the transaction that marks the case offered, then sent).
    Returns whether a reply was owed."""
    similar, slack, clock = services.similar, services.slack, services.clock
    if similar is None:
        return False
    with services.uow() as uow:
        case = uow.cases.get(case_id)
        if case is None or case.thread_ts is None or case.similar_offered_at is not None:
            return False
        team_id, channel_id, filer_id = case.team_id, case.channel_id, case.filer_id
        text = case_query(case)
    suggestions = similar.similar_to_text(
        services.uow,
        team_id=team_id,
        text=text,
        visible=readable_by_everyone_in(slack, channel_id),
        exclude_case=case_id,
        exclude_users=[filer_id],
    )
    reply = (
        offer_text(suggestions, expert_names(slack, suggestions), intro=THREAD_INTRO)
        if suggestions
        else None
    )
    with services.uow() as uow:
        case = uow.cases.get(case_id, for_update=True)
        if case is None or case.similar_offered_at is not None:
            return False  # another worker (or the sweep) got there first
        case.similar_offered_at = clock.now()
        post_id = None
        if reply is not None:
            assert case.thread_ts is not None
            post = uow.cases.owe_post(
                case=case,
                channel_id=case.channel_id,
                thread_ts=case.thread_ts,
                text=reply,
                at=clock.now(),
            )
            uow.flush()
            post_id = post.id
        uow.commit()
    if post_id is not None:
        deliver(services, [post_id])
    return post_id is not None


def offer_owed(services: Services) -> int:
    """The `similar:offer` sweep: the replies of recent cases not worked out yet (a restart,
    a card posted late, the model not loaded); return how many were owed a reply."""
    since = services.clock.now() - OFFER_WINDOW
    with services.uow() as uow:
        case_ids = list(
            uow.session.scalars(
                select(Case.id)
                .where(
                    Case.similar_offered_at.is_(None),
                    Case.thread_ts.is_not(None),
                    Case.created_at >= since,
                )
                .order_by(Case.id)
            )
        )
    offered = 0
    for case_id in case_ids:
        try:
            offered += offer_in_thread(services, case_id)
        except ModelUnavailable as exc:
            log.warning("similar cases are off: %s", exc)
            break
    return offered


@dataclass(frozen=True)
class SimilarAnswer:
    case_number: str
    suggestions: Suggestions
    names: tuple[str, ...]

    def text(self) -> str:
        if not self.suggestions:
            return (
                f"No resolved case you can read is similar enough to case "
                f"{escape(self.case_number)}."
            )
        intro = f"Resolved cases similar to case {escape(self.case_number)}:"
        return offer_text(self.suggestions, self.names, intro=intro)


def similar_for(
    services: Services, *, team_id: str, user_id: str, case_number: str
) -> SimilarAnswer:
    """`/swarm similar <case>`: for a case the user can read, what the user can read."""
    slack = services.slack
    may_read = readable_by(slack, user_id)
    # As if it did not exist for them; Slack is asked before the case is read again.
    visible = require_can_see(services, team_id=team_id, user_id=user_id, case_number=case_number)
    with services.uow.read() as uow:
        case = find_case(uow, team_id=team_id, case_id=visible.case_id)
        case_id, number, text = case.id, case.case_number, case_query(case)
        filer_id = case.filer_id
    if services.similar is None:
        return SimilarAnswer(number, Suggestions(), ())
    suggestions = services.similar.similar_to_text(
        services.uow,
        team_id=team_id,
        text=text,
        visible=may_read,
        exclude_case=case_id,
        exclude_users=[filer_id],
    )
    return SimilarAnswer(number, suggestions, tuple(expert_names(slack, suggestions)))
