"""Every log line the server writes during the suite, kept in memory, and a check that none
holds an NHS number: the suite's requests carry hundreds of them, in paths, queries, bodies
and errors, and the logs must never repeat one (data safety)."""

import logging
import re

from app.nhs import nhs_number_is_valid

# Ten digits standing alone (as 10, or 3-3-4 spaced), not part of a longer token such as
# the hex of a UUID, where ten digits in a row pass the check digit one time in eleven.
DIGITS = re.compile(r"(?<![0-9A-Za-z-])(\d{3}[ -]?\d{3}[ -]?\d{4})(?![0-9A-Za-z-])")
CLIENT_SIDE = ("httpx", "httpcore")  # the tests' own HTTP client, not the server


class LogCapture(logging.Handler):
    """Keeps the formatted text (with any traceback) of every server log record."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(CLIENT_SIDE):
            self.lines.append(self.format(record))

    def install(self) -> None:
        """Listen to every logger, at every level, from now on."""
        root = logging.getLogger()
        root.addHandler(self)
        root.setLevel(logging.DEBUG)


def nhs_numbers_in(lines: list[str]) -> dict[str, str]:
    """Each valid NHS number found in the lines, with the first line it is in."""
    found: dict[str, str] = {}
    for line in lines:
        for match in DIGITS.finditer(line):
            number = re.sub(r"[ -]", "", match.group(1))
            if nhs_number_is_valid(number) and number not in found:
                found[number] = line[:300]
    return found
