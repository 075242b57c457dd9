"""The swarm domain: intake, routing, escalation, SLA, resolution, metrics."""
