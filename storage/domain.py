"""The swarm's vocabulary: urgency, case status, roles. Plain enums, no database in sight.

They sit at the bottom of the one-way arrow (bot -> workflows -> storage) because the tables
store them: workflows and bot import them from here, and storage needs nothing above it.
"""

from __future__ import annotations

import enum


class Urgency(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    SWARMING = "swarming"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


class Role(enum.StrEnum):
    LEAD = "lead"
    EXPERT = "expert"


class ParticipantRole(enum.StrEnum):
    FILER = "filer"
    JOINED = "joined"
    REPLIED = "replied"
    ASSIGNEE = "assignee"
    INVITED = "invited"
