"""Which swarm channel a case goes to, and who leads it."""

from __future__ import annotations

from dataclasses import dataclass

from storage.domain import Role
from storage.uow import UnitOfWork
from workflows.config import SwarmConfig, Topic
from workflows.errors import NotALead, NotAnAdmin, SwarmError, UnknownTopic
from workflows.ports import SlackGateway
from workflows.services import Services


def require_topic(config: SwarmConfig, key: str) -> Topic:
    """A configured topic, or UnknownTopic."""
    topic = config.topic(key)
    if topic is None:
        raise UnknownTopic(key, [t.key for t in config.topics])
    return topic


def channel_for(
    uow: UnitOfWork, config: SwarmConfig, *, team_id: str, topic_key: str, region: str = ""
) -> str:
    """The routed channel: a region's own channel first, then the topic's; the database wins."""
    topic = require_topic(config, topic_key)
    if region:
        route = uow.routing.route(team_id=team_id, topic_key=topic_key, region=region)
        if route is not None:
            return route.channel_id
        if region in topic.region_channels:
            return topic.region_channels[region]
    route = uow.routing.route(team_id=team_id, topic_key=topic_key, region="")
    return route.channel_id if route is not None else topic.swarm_channel


def leads_of(uow: UnitOfWork, config: SwarmConfig, *, team_id: str, topic_key: str) -> list[str]:
    """Leads of a topic: from swarm.yaml and those added at run time, in that order."""
    topic = config.topic(topic_key)
    leads = list(topic.leads if topic else [])
    leads += uow.routing.users_with_role(team_id=team_id, role=Role.LEAD, topic_key=topic_key)
    return list(dict.fromkeys(leads))


def experts_of(uow: UnitOfWork, config: SwarmConfig, *, team_id: str, topic_key: str) -> list[str]:
    """Experts of a topic: from swarm.yaml and those added at run time."""
    topic = config.topic(topic_key)
    experts = list(topic.experts if topic else [])
    experts += uow.routing.users_with_role(team_id=team_id, role=Role.EXPERT, topic_key=topic_key)
    return list(dict.fromkeys(experts))


def is_admin(config: SwarmConfig, slack: SlackGateway, user_id: str) -> bool:
    """Listed in swarm.yaml `admins`, or a workspace admin or owner in Slack.

    This may ask Slack (`users.info`, remembered a few minutes): call it before a unit of
    work opens, never inside one, and hand the answer to `is_lead`.
    """
    return user_id in config.admins or slack.is_workspace_admin(user_id)


def is_lead(
    uow: UnitOfWork,
    config: SwarmConfig,
    *,
    admin: bool,
    team_id: str,
    user_id: str,
    topic_key: str,
) -> bool:
    """A lead of the topic (or of every topic), or an admin (`admin`: what is_admin said)."""
    if admin:
        return True
    return user_id in leads_of(uow, config, team_id=team_id, topic_key=topic_key)


@dataclass(frozen=True)
class RouteSet:
    topic_key: str
    region: str
    channel_id: str
    previous_channel_id: str


def set_route(
    services: Services,
    *,
    team_id: str,
    user_id: str,
    topic_key: str,
    region: str,
    channel_id: str,
) -> RouteSet:
    """`/swarm route`: make a channel the swarm channel of a topic (and region)."""
    topic = require_topic(services.config, topic_key)
    if region and region not in topic.regions:
        known = ", ".join(topic.regions) or "none"
        raise SwarmError(f"Topic `{topic_key}` has no region `{region}` (regions: {known}).")
    if not channel_id.startswith(("C", "G")):
        raise SwarmError("Run `/swarm route` in the channel that should become the swarm channel.")
    admin = is_admin(services.config, services.slack, user_id)
    with services.uow() as uow:
        if not is_lead(
            uow,
            services.config,
            admin=admin,
            team_id=team_id,
            user_id=user_id,
            topic_key=topic_key,
        ):
            raise NotALead("change routing", topic_key)
        previous = channel_for(
            uow, services.config, team_id=team_id, topic_key=topic_key, region=region
        )
        uow.cases.ensure_workspace(team_id=team_id)
        uow.routing.set_route(
            team_id=team_id,
            topic_key=topic_key,
            region=region,
            channel_id=channel_id,
            set_by=user_id,
            at=services.clock.now(),
        )
        uow.commit()
    return RouteSet(topic_key, region, channel_id, previous)


def add_role(
    services: Services,
    *,
    team_id: str,
    actor_id: str,
    user_id: str,
    role: Role,
    topic_key: str,
) -> bool:
    """`/swarm lead` (admins) and `/swarm expert` (leads of the topic); False if already so."""
    if topic_key:
        require_topic(services.config, topic_key)
    admin = is_admin(services.config, services.slack, actor_id)
    with services.uow() as uow:
        if role is Role.LEAD:
            if not admin:
                raise NotAnAdmin("name swarm leads")
        elif not is_lead(
            uow,
            services.config,
            admin=admin,
            team_id=team_id,
            user_id=actor_id,
            topic_key=topic_key,
        ):
            raise NotALead("name experts", topic_key)
        uow.cases.ensure_workspace(team_id=team_id)
        added = uow.routing.add_role(
            team_id=team_id,
            topic_key=topic_key,
            user_id=user_id,
            role=role,
            added_by=actor_id,
            at=services.clock.now(),
        )
        uow.commit()
        return added
