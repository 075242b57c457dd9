"""Incident channel names: SPEC's pattern, Slack's rules, whatever the topic and case number."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from workflows.config import Naming
from workflows.naming import NAME_MAX, case_slug, channel_name, slug

SLACK_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")
DEFAULT = Naming()


def test_the_name_reads_prefix_topic_severity_and_case() -> None:
    assert channel_name(DEFAULT, "api", 1, "27343") == "help-api-sev1-27343"
    assert channel_name(DEFAULT, "api", 1, "27343", 2) == "help-api-sev1-27343-2"
    assert channel_name(DEFAULT, "api", 4, "27343", 3) == "help-api-sev4-27343-3"


def test_prefix_and_severity_word_are_configurable() -> None:
    naming = Naming(prefix="ayuda", severity_word="grav")
    assert channel_name(naming, "api", 1, "27343") == "ayuda-api-grav1-27343"


def test_a_long_topic_is_cut_and_the_case_number_kept_whole() -> None:
    topic = "x" * 120
    name = channel_name(DEFAULT, topic, 2, "1234567890", 12)
    assert len(name) == NAME_MAX
    assert name.startswith("help-xxx") and name.endswith("-sev2-1234567890-12")


def test_uppercase_and_other_characters_become_slack_safe() -> None:
    assert channel_name(DEFAULT, "Billing & Tax", 3, "CS 42/7") == "help-billing-tax-sev3-cs-42-7"
    assert slug("--A__b!!c--") == "a__b-c"
    assert channel_name(DEFAULT, "api", 1, "٢٧٣٤٣") == "help-api-sev1-27343"  # Arabic-Indic digits


case_numbers = st.from_regex(r"\A[0-9]{3,10}\Z") | st.text(min_size=1, max_size=64)


@given(
    topic=st.text(max_size=200),
    severity=st.integers(min_value=1, max_value=4),
    case=case_numbers,
    n=st.integers(min_value=1, max_value=20),
    prefix=st.from_regex(r"\A[a-z0-9_-]{1,40}\Z"),
    word=st.from_regex(r"\A[a-z0-9_-]{1,20}\Z"),
)
def test_every_name_is_one_slack_accepts_with_the_case_number_whole(
    topic: str, severity: int, case: str, n: int, prefix: str, word: str
) -> None:
    name = channel_name(Naming(prefix=prefix, severity_word=word), topic, severity, case, n)
    assert SLACK_NAME.match(name), name
    assert name.strip("-_"), name  # not only punctuation (invalid_name_punctuation)
    suffix = case_slug(case) + (f"-{n}" if n > 1 else "")
    assert name.endswith(f"{severity}-{suffix}"), (name, suffix)


@given(
    topic=st.from_regex(r"\A[a-z0-9_-]{1,60}\Z"),
    severity=st.integers(min_value=1, max_value=4),
    case=st.from_regex(r"\A[0-9]{3,10}\Z"),
)
def test_candidates_differ_so_a_taken_name_always_has_a_next_one(
    topic: str, severity: int, case: str
) -> None:
    names = [channel_name(DEFAULT, topic, severity, case, n) for n in range(1, 8)]
    assert len(set(names)) == len(names)
    assert all(len(name) <= NAME_MAX for name in names)


@given(topic=st.from_regex(r"\A[a-z0-9]{1,30}\Z"), case=st.from_regex(r"\A[0-9]{3,10}\Z"))
def test_short_names_keep_the_topic_whole(topic: str, case: str) -> None:
    assert channel_name(DEFAULT, topic, 1, case) == f"help-{topic}-sev1-{case}"
