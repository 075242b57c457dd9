"""swarm.yaml: the team's topics, routing, SLA targets and escalation policy."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

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

from workflows.text import DURATION_UNITS, duration

SLUG = re.compile(r"^[a-z0-9_-]+$")
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{6,}$")
CHANNEL_NAME = re.compile(r"^#[a-z0-9_-]{1,80}$")
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
UNITS = dict(DURATION_UNITS)


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
    PlainSerializer(lambda d: duration(d, exact=True), return_type=str, when_used="json"),
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
        return self.url_template.replace("{case_number}", quote(case_number, safe=""))


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


class Weekly(Strict):
    """When each swarm channel gets its weekly chart (UTC)."""

    enabled: bool = True
    day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    hour: int = Field(default=9, ge=0, le=23)
    minute: int = Field(default=0, ge=0, le=59)


class Reports(Strict):
    weekly: Weekly = Weekly()


ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class StatusWebhook(Strict):
    """Where every status change of a case is POSTed, and the variable holding its secret."""

    url: str
    secret_env: str

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name (like SWARM_HOOK_KEY)")
        return value


class Integrations(Strict):
    status_webhook: StatusWebhook | None = None


class SwarmConfig(Strict):
    naming: Naming = Naming()
    case: CaseRules = CaseRules()
    topics: list[Topic] = Field(default_factory=list, validate_default=True)
    sla: Sla = Sla()
    escalation: Escalation = Escalation()
    reminders: Reminders = Reminders()
    reports: Reports = Reports()
    admins: list[UserId] = Field(default_factory=list)
    integrations: Integrations = Integrations()

    @field_validator("topics")
    @classmethod
    def _some_topics(cls, topics: list[Topic]) -> list[Topic]:
        if not topics:
            raise ValueError(
                "at least one topic is needed: the intake form offers them (see swarm.example.yaml)"
            )
        return topics

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
        path = f"{self.path}: " if self.path else ""
        return f"{where}{path}{self.message}"


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
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f" (column {mark.column + 1})" if mark else ""
        raise ConfigError(source, [Problem("", f"not valid YAML: {what}{where}", line)]) from None
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
            if loc and loc[-1] == "[key]":  # a mapping's key: escalation.notify.sev5.[key]
                loc = loc[:-2]
            problems.append(Problem(_path(loc), _wording(error), _line_of(lines, loc)))
    problems.extend(_duplicate_topics(data, lines))
    if problems or config is None:
        raise ConfigError(source, problems)
    return config


def _wording(error: Any) -> str:
    """A pydantic error in the words of someone editing YAML."""
    kind, loc, value = error["type"], error["loc"], error.get("input")
    context = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}"
    if kind == "literal_error":
        expected = context.get("expected", "").replace("'", "")
        if loc and loc[-1] == "[key]":
            return f"unknown key {value!r} (use {expected})"
        return f"{value!r} is not allowed here (use {expected})"
    simple = {
        "missing": "required, but missing",
        "string_type": "should be text",
        "list_type": "should be a list ([a, b] or one '- item' per line)",
        "dict_type": "should be a mapping (key: value)",
        "model_type": "should be a mapping (key: value)",
        "model_attributes_type": "should be a mapping (key: value)",
        "int_type": "should be a whole number",
        "int_parsing": "should be a whole number",
        "int_from_float": "should be a whole number",
        "bool_type": "should be true or false",
        "bool_parsing": "should be true or false",
    }
    if kind in simple:
        return simple[kind]
    if kind in ("greater_than_equal", "greater_than"):
        return f"{value!r} is too small (at least {context.get('ge', context.get('gt'))})"
    if kind in ("less_than_equal", "less_than"):
        return f"{value!r} is too large (at most {context.get('le', context.get('lt'))})"
    return str(error["msg"]).removeprefix("Value error, ")


def unanchored_pattern(pattern: str) -> bool:
    """Whether a case number pattern lacks ^ and $ (it is always matched in full anyway)."""
    return not (pattern.startswith(("^", "\\A")) and pattern.endswith(("$", "\\Z", "\\z")))


def config_warnings(text: str, config: SwarmConfig) -> list[Problem]:
    """Things that work but probably are not what was meant."""
    warnings: list[Problem] = []
    pattern = config.case.number_pattern
    if unanchored_pattern(pattern):
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            node = None
        lines = _lines(node) if node is not None else {}
        warnings.append(
            Problem(
                "case.number_pattern",
                f"'{pattern}' is not anchored: write '^{pattern.lstrip('^').rstrip('$')}$' "
                "(case numbers must match it in full, from the first character to the last)",
                _line_of(lines, ("case", "number_pattern")),
            )
        )
    return warnings


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
    return parse_config(read_config_text(path), str(path))


def read_config_text(path: str | Path) -> str:
    """The text of a configuration file; ConfigError saying what to do when it cannot be read."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        message = (
            "no such file: copy swarm.example.yaml to swarm.yaml and edit it, "
            "or set SWARM_CONFIG to your configuration file"
        )
    except UnicodeDecodeError:
        message = "cannot read: the file is not UTF-8 text"
    except OSError as exc:
        message = f"cannot read: {exc.strerror or exc}"
    raise ConfigError(str(path), [Problem("", message)]) from None
