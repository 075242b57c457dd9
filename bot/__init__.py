"""Slack, and only Slack: the Bolt app, its listeners and views, and the CLI."""
