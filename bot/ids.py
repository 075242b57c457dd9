"""Every Slack identifier the app registers or reads, in one place."""

from __future__ import annotations

from enum import StrEnum

COMMAND = "/swarm"
CARD_EVENT_TYPE = "swarm_case"


class Callback(StrEnum):
    FILE_CASE = "file-swarm-case"
    SWARM_MESSAGE = "swarm-this-message"
    INTAKE_VIEW = "swarm-intake"
    ESCALATE_VIEW = "swarm-escalate"
    RESOLVE_VIEW = "swarm-resolve"


class Step(StrEnum):
    """Workflow Builder steps (`functions` in the manifest); Slack requires snake_case ids."""

    FILE_CASE = "file_swarm_case"


class StepInput(StrEnum):
    """Input parameters of the File a swarm case step."""

    CASE_NUMBER = "case_number"
    URGENCY = "urgency"
    TOPIC = "topic"
    SUMMARY = "summary"
    DETAILS = "details"
    CUSTOMER = "customer"
    REGION = "region"
    FILER = "filer"


class StepOutput(StrEnum):
    """Output parameters of the File a swarm case step."""

    CASE_NUMBER = "case_number"
    CASE_URL = "case_url"
    THREAD_PERMALINK = "thread_permalink"


class Action(StrEnum):
    JOIN = "case-join"
    CLAIM = "case-claim"
    ESCALATE = "case-escalate"
    RESOLVE = "case-resolve"
    SEARCH_MORE = "search-more"
    HOME_CLAIM = "home-claim"
    HOME_ASSIGN = "home-assign"
    HOME_ESCALATE = "home-escalate"
    HOME_PAGE_PREVIOUS = "home-page-previous"
    HOME_PAGE_NEXT = "home-page-next"


# App Home: the block of each queued case carries its id after this prefix.
HOME_CASE_BLOCK = "home-case-"


class Field(StrEnum):
    """Intake modal blocks; each holds one element whose action_id is `value`."""

    CASE_NUMBER = "case_number"
    URGENCY = "urgency"
    TOPIC = "topic"
    REGION = "region"
    SUMMARY = "summary"
    DETAILS = "details"
    CUSTOMER = "customer"


class EscalateField(StrEnum):
    """Escalate modal blocks."""

    SEVERITY = "severity"
    REASON = "reason"
    CONFIDENTIAL = "confidential"


class ResolveField(StrEnum):
    """Resolve modal blocks."""

    RESOLUTION = "resolution"
    ROOT_CAUSE = "root_cause"
    WORKAROUND = "workaround"
    KB_LINK = "kb_link"


VALUE = "value"
CONFIDENTIAL_YES = "yes"
