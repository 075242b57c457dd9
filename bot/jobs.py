"""Job-store names from before scheduling/ left bot/: timers and sweeps stored then still run."""

from scheduling.sweeps import run_sweep, run_timer

__all__ = ["run_sweep", "run_timer"]
