"""A request-rate limit per client: a token bucket per client id, in this process.

Each client may burst up to a minute's allowance, then makes requests as the bucket refills
(`per_minute` / 60 a second). The buckets live in the process: with several workers each
counts on its own, so the limit a client meets is per worker, not global.
Spec: https://www.rfc-editor.org/rfc/rfc6585#section-4
"""

import math
import time


class RateLimiter:
    """Token buckets by client id; `take` answers 0 (go ahead) or the seconds to wait."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)

    def take(self, client_id: str) -> int:
        """Spend one token of the client's bucket: 0 if there was one, else Retry-After."""
        now = time.monotonic()
        tokens, at = self._buckets.get(client_id, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[client_id] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))
        self._buckets[client_id] = (tokens - 1.0, now)
        return 0
