"""The long commands' progress bars: drawn on a terminal, and nothing at all elsewhere."""

import io

from rich.console import Console

from app.progress import Bars


def _drawn(console: Console, shown: bool = True) -> str:
    with Bars(shown, console) as bars, bars.task("writing the demo families", 3) as advance:
        for _ in range(3):
            advance(1)
        if bars.progress is not None:
            bars.progress.refresh()  # drawn now, as its refresh thread would
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def test_a_terminal_sees_the_bar_with_its_count() -> None:
    drawn = _drawn(Console(file=io.StringIO(), force_terminal=True, width=100))
    assert "writing the demo families" in drawn and "3/3" in drawn


def test_a_pipe_or_a_file_gets_nothing() -> None:
    assert _drawn(Console(file=io.StringIO(), force_terminal=False)) == ""


def test_bars_turned_off_draw_nothing_on_a_terminal_either() -> None:
    assert _drawn(Console(file=io.StringIO(), force_terminal=True), shown=False) == ""
