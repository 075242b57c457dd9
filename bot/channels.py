"""Resolve '#channel-name' references of swarm.yaml to channel ids at start."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient

from workflows.config import ConfigError, Problem, SwarmConfig


def channel_ids_by_name(client: WebClient) -> dict[str, str]:
    """Every channel the bot can see, name -> id (paginated)."""
    names: dict[str, str] = {}
    cursor = None
    while True:
        response = client.conversations_list(
            types="public_channel,private_channel", exclude_archived=True, limit=1000, cursor=cursor
        )
        for channel in response.get("channels", []):
            names[channel["name"]] = channel["id"]
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return names


def resolve_channel_names(config: SwarmConfig, client: WebClient) -> SwarmConfig:
    """The same configuration with every '#name' replaced by its id; ConfigError if unknown."""
    data = config.model_dump(mode="json")
    refs: list[tuple[str, Any, Any]] = []
    for i, topic in enumerate(data["topics"]):
        refs.append((f"topics[{i}].swarm_channel", topic, "swarm_channel"))
        for region in topic["region_channels"]:
            refs.append((f"topics[{i}].region_channels.{region}", topic["region_channels"], region))
    for severity, channels in data["escalation"]["notify"].items():
        for j in range(len(channels)):
            refs.append((f"escalation.notify.{severity}[{j}]", channels, j))
    wanted = [(path, holder, key) for path, holder, key in refs if str(holder[key]).startswith("#")]
    if not wanted:
        return config
    known = channel_ids_by_name(client)
    problems = []
    for path, holder, key in wanted:
        name = holder[key][1:]
        if name in known:
            holder[key] = known[name]
        else:
            problems.append(Problem(path, f"no channel named #{name} that the bot can see"))
    if problems:
        raise ConfigError("swarm.yaml", problems)
    return SwarmConfig.model_validate(data)
