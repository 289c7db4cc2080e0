"""Progress bars for the long commands (`seed-demo`, `reconcile`): a rich bar per step on
stderr, gone when the step ends, and nothing at all when stderr is not a terminal (a pipe, a
log file, CI) or when turned off, so captured output holds only the commands' own lines."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Advance = Callable[[int], None]  # told how many more units of a step are done


class Bars:
    """A bar per long step, on stderr; nothing when `shown` is false or stderr is no terminal."""

    def __init__(self, shown: bool = True, console: Console | None = None) -> None:
        console = console or Console(stderr=True)
        self.progress = (
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            if shown and console.is_terminal
            else None
        )

    def __enter__(self) -> "Bars":
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Advance]:
        """A step's bar; yields the function that advances it."""
        if self.progress is None:
            yield lambda _: None
            return
        progress = self.progress
        task = progress.add_task(description, total=total)
        yield lambda done: progress.advance(task, done)
        progress.update(task, visible=False)
