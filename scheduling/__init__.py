"""Scheduled work of a running bot: SLA timers and periodic sweeps, run by one leader process.

Every process starts an APScheduler on a persistent job store in DATABASE_URL, paused: it can
arm and cancel timers (they are rows in the store) but runs nothing. One process per database
is the leader (leadership.py); only the leader resumes its scheduler (scheduler.py), so each
job fires once. The periodic jobs are one table (sweeps.py). Job bodies claim their work in
the database before they send, so even a job run twice sends once.
"""
