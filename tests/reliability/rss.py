"""The resident memory (VmRSS) of a process and its descendants, and its peak, sampled every
20 ms in a thread."""

import threading
from pathlib import Path

INTERVAL = 0.02  # seconds between samples
MB = 1024 * 1024


def _descendants(pid: int) -> list[int]:
    """The process and every process below it."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                pending += [int(child) for child in task.read_text().split()]
            except OSError:  # the task ended meanwhile
                continue
    return found


def rss_bytes(pid: int) -> int:
    """VmRSS of the process and its descendants, in bytes (0 for one that has gone)."""
    total = 0
    for member in _descendants(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


class PeakRss:
    """Samples a process tree's RSS in a thread between `start` and `stop`; `peak` is the
    highest sample since the last `reset`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._lock = threading.Lock()  # a sample taken before a reset must not outlive it
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stopping.wait(INTERVAL):
            with self._lock:
                self.peak = max(self.peak, rss_bytes(self.pid))

    def start(self) -> None:
        """Begin sampling."""
        self._thread.start()

    def reset(self) -> None:
        """Forget the peak so far: the next case starts from the current size."""
        with self._lock:
            self.peak = rss_bytes(self.pid)

    def stop(self) -> None:
        """Stop sampling."""
        self._stopping.set()
        self._thread.join()
