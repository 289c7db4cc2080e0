"""Counts operators watch, read when /metrics is scraped: export jobs by state, the
notification outbox's depth and the events awaiting delivery. One statement over small tables
(jobs are deleted after their retention, notifications once numbered, one state row per
Subscription); the outbox is counted up to `OUTBOX_CAP`, so a backlog left by a stopped
notifier never makes a scrape slow. Counts only: nothing about a patient.
"""

from app.metrics import DatabaseCounts
from app.storage.db import Connection
from app.storage.export_jobs import COMPLETED, FAILED, IN_PROGRESS
from app.storage.subscriptions import DELIVERING

OUTBOX_CAP = 100_000
_DELIVERING = ", ".join(f"'{status}'" for status in DELIVERING)
_COUNTS = (
    "SELECT status, count(*) FROM export_job GROUP BY status "
    "UNION ALL SELECT '', count(*) FROM (SELECT 1 FROM notification LIMIT $1) AS outbox "
    "UNION ALL SELECT NULL, coalesce(sum(events_total - delivered_through), 0) "
    f"FROM subscription_state WHERE endpoint IS NOT NULL AND status IN ({_DELIVERING})"
)


async def database_counts(conn: Connection) -> DatabaseCounts:
    """The counts, by one statement."""
    jobs = dict.fromkeys((IN_PROGRESS, COMPLETED, FAILED), 0)
    outbox = undelivered = 0
    for name, count in await conn.fetch(_COUNTS, OUTBOX_CAP):
        if name is None:
            undelivered = int(count)
        elif name == "":
            outbox = int(count)
        else:
            jobs[name] = int(count)
    return DatabaseCounts(jobs, outbox, undelivered)
