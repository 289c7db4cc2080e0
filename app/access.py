"""Who is asking: the caller a request is served for, resolved once per request.

Every read of stored resources is filtered for its caller inside the SQL
(`storage.statements.Sql.visible`); what a caller may not see is answered as if it did not
exist. Until clients authenticate, every request is `ANONYMOUS`, which sees everything.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity behind a request and what it may read.

    `readable_types`: the resource types it may read (None: every type); what it may not
    read is absent from every answer, as if it did not exist.
    """

    subject: str
    organisation: str | None = None
    readable_types: frozenset[str] | None = None


ANONYMOUS = Caller(subject="anonymous")
SYSTEM = Caller(subject="system")
