"""app.yaml is a valid Slack manifest, in step with the listeners and the scopes the code uses."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource

from bot.ids import Step, StepInput, StepOutput
from bot.listeners import registered
from tests.conftest import RunningBot

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Path(__file__).parent / "manifest_schema"

# The bot scopes each Web API method needs (from Slack's method reference pages).
SCOPES_BY_METHOD = {
    "chat_postMessage": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "chat_update": {"chat:write"},
    "auth_test": set(),
    "chat_getPermalink": set(),
    "conversations_join": {"channels:join"},
    "conversations_history": {"channels:history", "groups:history"},
    "conversations_replies": {"channels:history", "groups:history"},
    "conversations_list": {"channels:read", "groups:read"},
    "conversations_info": {"channels:read", "groups:read"},
    "conversations_members": {"channels:read", "groups:read"},
    "conversations_create": {"channels:manage", "groups:write"},
    "conversations_invite": {"channels:manage", "groups:write"},
    "conversations_rename": {"channels:manage", "groups:write"},
    "conversations_archive": {"channels:manage", "groups:write"},
    "conversations_unarchive": {"channels:manage", "groups:write"},
    "conversations_setTopic": {"channels:manage", "groups:write"},
    "conversations_setPurpose": {"channels:manage", "groups:write"},
    "pins_add": {"pins:write"},
    "users_info": {"users:read"},
    "users_lookupByEmail": {"users:read.email"},
    "views_open": set(),
    "views_update": set(),
    "views_publish": set(),
    "files_upload_v2": {"files:write"},
    # Not a Web API method: the Socket Mode client acknowledging an envelope.
    "send_socket_mode_response": set(),
}
EVENT_SCOPES = {
    "message.channels": {"channels:history"},
    "message.groups": {"groups:history"},
    "app_home_opened": set(),
    "member_joined_channel": {"channels:read", "groups:read"},
    "function_executed": set(),
}


def manifest() -> dict:
    return yaml.safe_load((ROOT / "app.yaml").read_text())


def test_manifest_is_valid_against_slacks_schema() -> None:
    errors = schema_errors(manifest())
    assert not errors, errors


def schema_errors(candidate: dict) -> list[str]:
    resources = []
    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text())
        resources.append(
            (
                f"https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/"
                f"schemas/{path.name}",
                Resource.from_contents(schema),
            )
        )
    registry = Registry().with_resources(resources)
    root = json.loads((SCHEMAS / "manifest.schema.json").read_text())
    validator = jsonschema.Draft7Validator(root, registry=registry)
    return [e.message for e in sorted(validator.iter_errors(candidate), key=lambda e: e.path)]


def test_schema_rejects_a_broken_manifest() -> None:
    versioned = json.loads((SCHEMAS / "manifest.schema.2.0.0.json").read_text())
    broken = manifest()
    broken["features"]["slash_commands"][0]["bogus"] = True
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, versioned)


def test_schema_rejects_a_step_whose_parameters_are_not_a_parameter_set() -> None:
    broken = copy.deepcopy(manifest())
    step = broken["functions"]["file_swarm_case"]
    step["input_parameters"] = {"case_number": {"type": "string"}}  # no "properties"
    assert schema_errors(broken)
    unknown_type = copy.deepcopy(manifest())
    unknown_type["functions"]["file_swarm_case"]["output_parameters"]["properties"]["case_number"][
        "type"
    ] = 42
    assert schema_errors(unknown_type)


def test_the_step_is_declared_for_workflow_builder() -> None:
    settings = manifest()["settings"]
    assert settings["function_runtime"] == "remote"
    assert settings["org_deploy_enabled"] is True
    assert "function_executed" in settings["event_subscriptions"]["bot_events"]
    step = manifest()["functions"][str(Step.FILE_CASE)]
    inputs = step["input_parameters"]
    assert set(inputs["properties"]) == {str(i) for i in StepInput}
    assert inputs["properties"]["filer"]["type"] == "slack#/types/user_id"
    assert set(inputs["required"]) <= set(inputs["properties"])
    outputs = step["output_parameters"]["properties"]
    assert set(outputs) == {str(o) for o in StepOutput}


def test_manifest_and_listeners_are_in_step() -> None:
    features = manifest()["features"]
    shortcuts = features.get("shortcuts", [])
    declared = {
        "global_shortcuts": {s["callback_id"] for s in shortcuts if s["type"] == "global"},
        "message_shortcuts": {s["callback_id"] for s in shortcuts if s["type"] == "message"},
        "commands": {c["command"] for c in features.get("slash_commands", [])},
        "events": {
            e.split(".")[0]
            for e in manifest()["settings"].get("event_subscriptions", {}).get("bot_events", [])
        },
        "functions": set(manifest().get("functions", {})),
    }
    assert declared == registered()


def test_manifest_scopes_are_exactly_those_the_code_uses() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "bot").rglob("*.py"))
    called = set(re.findall(r"client\.(\w+)\(", source))
    unknown = called - SCOPES_BY_METHOD.keys()
    assert not unknown, f"add these methods to SCOPES_BY_METHOD: {unknown}"
    needed = set().union(*(SCOPES_BY_METHOD[m] for m in called))
    settings = manifest()["settings"]
    for event in settings.get("event_subscriptions", {}).get("bot_events", []):
        needed |= EVENT_SCOPES[event]
    if manifest()["features"].get("slash_commands"):
        needed.add("commands")
    assert set(manifest()["oauth_config"]["scopes"]["bot"]) == needed


def test_every_manifest_entry_reaches_a_listener(bot: RunningBot, fake) -> None:
    features = manifest()["features"]
    for shortcut in features["shortcuts"]:
        if shortcut["type"] == "global":
            reply = bot.driver.global_shortcut(callback_id=shortcut["callback_id"])
        else:
            reply = bot.driver.message_shortcut(text="help")
        assert reply.status == 200, shortcut
    for command in features["slash_commands"]:
        assert bot.driver.command("help").status == 200, command
    assert len(fake.calls_to("views.open")) == 2
