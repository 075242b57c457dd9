"""A scheduler process for tests: `python -m tests.scheduler_process DATABASE_URL API_URL CONFIG`.

Prints `LEAD <pid>` when it takes the lead, then runs until killed or stdin closes.
"""

from __future__ import annotations

import os
import sys
import threading

from bot.gateway import web_client
from bot.runtime import build_swarm
from bot.settings import Settings
from scheduling.scheduler import SwarmScheduler
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from workflows.config import load_config


def main() -> None:
    database_url, api_url, config_path = sys.argv[1:4]
    settings = Settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=api_url,
        database_url=database_url,
    )
    swarm = build_swarm(settings, config=load_config(config_path))
    scheduler = SwarmScheduler(
        swarm, web_client(BOT_TOKEN, api_url), poll=0.1, elect_every=0.1
    ).start()
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    told = False
    while not done.wait(0.05):
        if scheduler.leading and not told:
            print(f"LEAD {os.getpid()}", flush=True)
            told = True
    scheduler.shutdown()


if __name__ == "__main__":
    main()
