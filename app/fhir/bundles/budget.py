"""What a Bundle's answer may still carry, in bytes (`Settings.max_response_bytes`): without
it a 5 KB batch of reads can build an answer of hundreds of megabytes (each read of a large
resource copied into it again). Once an answer is full, the entries left are refused without
running, so their memory is never spent. Spec: http://hl7.org/fhir/R4/http.html#transaction
"""

from app.errors import FhirError, Invalid


class Budget:
    """The bytes left for a Bundle's answer."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    @property
    def full(self) -> bool:
        """Whether nothing more may go into the answer."""
        return self.left <= 0

    def refusal(self, index: int) -> FhirError:
        """The error of an entry that does not fit (400, naming it)."""
        return Invalid.of(
            f"the answer would exceed {self.limit} bytes (SAFEGUARD_MAX_RESPONSE_BYTES): send "
            "this entry on its own, or page its search with _count",
            f"Bundle.entry[{index}]",
            code="too-costly",
        )

    def spend(self, answer: bytes, index: int) -> None:
        """Count an entry's answer; if it does not fit, the answer is full and this raises."""
        if len(answer) > self.left:
            self.left = 0
            raise self.refusal(index)
        self.left -= len(answer)
