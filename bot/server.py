"""Serving: gunicorn workers over HTTP, or Socket Mode."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

log = logging.getLogger(__name__)


class Gunicorn(BaseApplication):  # type: ignore[misc]
    """Gunicorn, configured in code; each worker builds its own app after the fork."""

    def __init__(self, factory: Callable[[], Any], options: dict[str, Any]) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.factory()


def serve_http(factory: Callable[[], Any], *, port: int, workers: int, threads: int = 8) -> None:
    """Serve /slack/events with gunicorn's threaded workers until stopped."""
    Gunicorn(
        factory,
        {
            "bind": f"0.0.0.0:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            "timeout": 30,
            "graceful_timeout": 20,
            "accesslog": None,
            "preload_app": False,
        },
    ).run()
