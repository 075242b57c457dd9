"""The one error handler: domain errors become a message to the person who asked."""

from __future__ import annotations

import inspect
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from slack_bolt import App, Args
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from workflows.errors import SlackUnavailable, SwarmError

log = logging.getLogger("swarm.errors")

# Slack waits 3 s for an ack; past that, the request thread stops waiting for one.
ACK_WITHIN = 3.0

DATABASE_DOWN = (
    "The database is not answering right now, so nothing was changed. Please try again in a minute."
)
SLACK_FAILED = {
    "expired_trigger_id": "The form took too long to open. Please try again.",
    "exchanged_trigger_id": "That form was already opened. Please try again.",
}


def handle_error(error: Exception, body: dict[str, Any], client: WebClient) -> None:
    """Tell the user what happened; log what they cannot act on."""
    if isinstance(error, SlackUnavailable):
        log.warning("slack unavailable: %s", error)
        text = (
            "Slack is not answering right now; please try again in a minute. What was already "
            "saved reaches Slack when it is back."
        )
    elif isinstance(error, SwarmError):
        text = str(error)
    elif database_down(error):
        log.warning("database unavailable: %s", str(error).splitlines()[0])
        text = DATABASE_DOWN
    else:
        code = getattr(getattr(error, "response", None), "get", lambda _k: None)("error")
        if code in SLACK_FAILED:
            text = SLACK_FAILED[code]
        else:
            ref = uuid.uuid4().hex[:8]
            log.error("unhandled error (ref %s)", ref, exc_info=error)
            text = f"Something went wrong on our side (ref {ref}). Nothing you entered is lost."
    _tell(body, client, text)


CANT_REACH_DATABASE = ("connection", "could not connect", "database is locked", "unable to open")


def database_down(error: BaseException) -> bool:
    """Whether an error means the database cannot be reached now (not a bug of ours)."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if not isinstance(error, (OperationalError, InterfaceError)):
        return False
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate:  # PostgreSQL: connection exceptions (08) and shutdowns (57P)
        return str(sqlstate).startswith(("08", "57P"))
    return any(words in str(error.orig).lower() for words in CANT_REACH_DATABASE)


def _tell(body: dict[str, Any], client: WebClient, text: str) -> None:
    """Answer through the response_url when there is one, else by DM."""
    response_url = body.get("response_url") or next(
        (r.get("response_url") for r in body.get("response_urls") or []), None
    )
    user_id = body.get("user_id") or (body.get("user") or {}).get("id")
    try:
        if response_url:
            WebhookClient(response_url, timeout=5).send(
                text=text, response_type="ephemeral", replace_original=False
            )
        elif user_id:
            client.chat_postMessage(channel=user_id, text=text)
    except Exception:  # the user cannot be told; the log has it
        log.warning("could not tell %s: %s", user_id, text, exc_info=True)


def guarded(listener: Callable[..., None]) -> Callable[[Args], None]:
    """Run a listener so that its ack is answered at once and an error after the ack reaches
    the error handler, not Bolt.

    The app runs with process_before_response (see bot.app): Bolt answers Slack when this
    function returns. It hands the listener to the listener executor and returns the moment
    the listener calls ack() (a listener without `ack`, an event, is acknowledged first), so
    the answer goes out without Bolt's 10 ms polling for the ack, while what the listener
    does after its ack (Slack calls, publishing) goes on in the executor. A listener still
    decides its ack itself: a modal's `response_action: errors` is validated before it.

    An error before the ack is raised here (Bolt answers 500 and calls handle_error); after
    it, the ack stands and the user is told what happened.
    """
    names = inspect.getfullargspec(listener).args
    takes_ack = "ack" in names

    def run(args: Args) -> None:
        acked = threading.Event()
        failed: list[BaseException] = []

        def ack(*a: Any, **kw: Any) -> Any:
            try:
                return args.ack(*a, **kw)
            finally:
                acked.set()
                # Hand the GIL to the waiting request thread now, not after the switch
                # interval (5 ms) of the work that follows the ack.
                time.sleep(0)

        def body() -> None:
            given = {name: getattr(args, name) for name in names}
            if takes_ack:
                given["ack"] = ack
            try:
                listener(**given)
            except Exception as error:
                if args.ack.response is None:
                    failed.append(error)  # not acknowledged: raised in the request thread
                else:
                    handle_error(error, args.body, args.client)
            finally:
                acked.set()

        executor = args.context.listener_runner.listener_executor
        if not takes_ack:  # an event: Slack needs only the 200
            args.ack()
            executor.submit(body)
            return
        executor.submit(body)
        acked.wait(ACK_WITHIN)
        if failed:
            raise failed[0]

    run.__name__ = listener.__name__
    run.__doc__ = listener.__doc__
    return run


def register(app: App) -> None:
    app.error(handle_error)
