"""Who is asking: the access context passed down to every storage call."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity behind a request; access rules will be enforced from this in one place."""

    subject: str
    organisation: str | None = None
    allow_all: bool = True


ANONYMOUS = Caller(subject="anonymous")
SYSTEM = Caller(subject="system")
