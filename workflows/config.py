"""swarm.yaml: the team's topics, routing, SLA targets and escalation policy."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

SLUG = re.compile(r"^[a-z0-9_-]+$")
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{6,}$")
CHANNEL_NAME = re.compile(r"^#[a-z0-9_-]{1,80}$")
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """`30s`, `15m`, `4h`, `2d`, `1w` (or a number of seconds) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration like 30s, 15m, 4h or 2d")
    if isinstance(value, int):
        seconds = value
    else:
        match = DURATION.match(str(value).strip().lower())
        if not match:
            raise ValueError(f"{value!r} is not a duration like 30s, 15m, 4h or 2d")
        seconds = int(match.group(1)) * UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be longer than zero")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest config spelling of a duration (`90m` -> `90m`, `7200s` -> `2h`)."""
    seconds = int(delta.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError(f"{value!r} must use only a-z, 0-9, '-' and '_'")
    return value


def _channel(value: str) -> str:
    if not (CHANNEL_ID.match(value) or CHANNEL_NAME.match(value)):
        raise ValueError(f"{value!r} is not a channel id (C0123ABCD) or '#channel-name'")
    return value


def _user(value: str) -> str:
    if not USER_ID.match(value):
        raise ValueError(f"{value!r} is not a Slack user id (U0123ABCD)")
    return value


def _pattern(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda d: format_duration(d), return_type=str, when_used="json"),
]
Slug = Annotated[str, AfterValidator(_slug)]
ChannelRef = Annotated[str, AfterValidator(_channel)]
UserId = Annotated[str, AfterValidator(_user)]
Severity = Literal["sev1", "sev2", "sev3", "sev4"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Naming(Strict):
    prefix: Slug = "help"
    severity_word: Slug = "sev"


class CaseRules(Strict):
    number_pattern: Annotated[str, AfterValidator(_pattern)] = r"^\d{3,10}$"
    url_template: str | None = None

    @field_validator("url_template")
    @classmethod
    def _has_placeholder(cls, value: str | None) -> str | None:
        if value is not None and "{case_number}" not in value:
            raise ValueError("must contain {case_number}")
        return value

    def case_url(self, case_number: str) -> str | None:
        """The case in the support system, when a template is configured."""
        if not self.url_template:
            return None
        return self.url_template.replace("{case_number}", case_number)


class Topic(Strict):
    key: Slug
    label: str = ""
    swarm_channel: ChannelRef
    leads: list[UserId] = Field(default_factory=list)
    experts: list[UserId] = Field(default_factory=list)
    regions: list[Slug] = Field(default_factory=list)
    region_channels: dict[str, ChannelRef] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _region_channels_known(self) -> Topic:
        for region in self.region_channels:
            if region not in self.regions:
                raise ValueError(
                    f"region_channels has {region!r}, which is not one of regions {self.regions}"
                )
        return self

    @property
    def title(self) -> str:
        """The label, or the key when there is none."""
        return self.label or self.key


class SlaTarget(Strict):
    first_response: Duration
    resolution: Duration

    @model_validator(mode="after")
    def _ordered(self) -> SlaTarget:
        if self.first_response > self.resolution:
            raise ValueError("first_response must not be longer than resolution")
        return self


class Sla(Strict):
    critical: SlaTarget = SlaTarget(
        first_response=timedelta(minutes=15), resolution=timedelta(hours=4)
    )
    high: SlaTarget = SlaTarget(first_response=timedelta(hours=1), resolution=timedelta(days=1))
    medium: SlaTarget = SlaTarget(first_response=timedelta(hours=4), resolution=timedelta(days=3))
    low: SlaTarget = SlaTarget(first_response=timedelta(days=1), resolution=timedelta(days=7))

    def target(self, urgency: str) -> SlaTarget:
        """Targets for one urgency."""
        return getattr(self, str(urgency))


class Escalation(Strict):
    private: bool = False
    notify: dict[Severity, list[ChannelRef]] = Field(default_factory=dict)
    archive_after: Duration = timedelta(days=7)


class Reminders(Strict):
    stale_after: Duration = timedelta(hours=2)
    digest_hour: int = Field(default=9, ge=0, le=23)


class SwarmConfig(Strict):
    naming: Naming = Naming()
    case: CaseRules = CaseRules()
    topics: list[Topic] = Field(default_factory=list)
    sla: Sla = Sla()
    escalation: Escalation = Escalation()
    reminders: Reminders = Reminders()
    admins: list[UserId] = Field(default_factory=list)

    def topic(self, key: str) -> Topic | None:
        """A topic by key."""
        return next((t for t in self.topics if t.key == key), None)

    @property
    def regions(self) -> list[str]:
        """Every region of any topic, in first-seen order."""
        seen: dict[str, None] = {}
        for topic in self.topics:
            seen.update(dict.fromkeys(topic.regions))
        return list(seen)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration, and where."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path or '(top level)'}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` says why."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(str(p) for p in problems))


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _lines(node: yaml.Node, prefix: tuple[int | str, ...] = ()) -> dict[tuple, int]:
    """Line number of every key and list item, by location."""
    lines: dict[tuple, int] = {prefix: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            loc = (*prefix, key_node.value)
            lines.update(_lines(value_node, loc))
            lines[loc] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_lines(item, (*prefix, index)))
    return lines


def _line_of(lines: dict[tuple, int], loc: tuple[int | str, ...]) -> int | None:
    while loc not in lines and loc:
        loc = loc[:-1]
    return lines.get(loc)


def parse_config(text: str, source: str = "swarm.yaml") -> SwarmConfig:
    """Validate YAML text; raise ConfigError listing every problem with its location."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ConfigError(source, [Problem("", f"not valid YAML: {exc}", line)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("", "the top level must be a mapping", 1)])
    lines = _lines(node) if node is not None else {}
    problems: list[Problem] = []
    config: SwarmConfig | None = None
    try:
        config = SwarmConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = f"unknown key {loc[-1]!r}"
            problems.append(Problem(_path(loc), message, _line_of(lines, loc)))
    problems.extend(_duplicate_topics(data, lines))
    if problems or config is None:
        raise ConfigError(source, problems)
    return config


def _duplicate_topics(data: dict[str, Any], lines: dict[tuple, int]) -> list[Problem]:
    topics = data.get("topics")
    if not isinstance(topics, list):
        return []
    first: dict[str, int] = {}
    problems = []
    for index, topic in enumerate(topics):
        key = topic.get("key") if isinstance(topic, dict) else None
        if not isinstance(key, str):
            continue
        if key in first:
            loc = ("topics", index, "key")
            problems.append(
                Problem(
                    _path(loc),
                    f"duplicate topic key {key!r} (first at topics[{first[key]}])",
                    _line_of(lines, loc),
                )
            )
        else:
            first[key] = index
    return problems


def load_config(path: str | Path) -> SwarmConfig:
    """Read and validate a configuration file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [Problem("", f"cannot read: {exc.strerror}")]) from None
    return parse_config(text, str(path))
