"""What `safeguard export` shows as it goes (a rich progress display on stderr) and the
summary it prints at the end (counts, sizes and times only: never a resource's content)."""

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from app.bulk_client.export import Result


class ProgressDisplay:
    """A spinner while the server works (its X-Progress beside it), then a bar per file."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._export: TaskID | None = None
        self._file: TaskID | None = None

    def __enter__(self) -> "ProgressDisplay":
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def waiting(self, progress: str | None) -> None:
        """The server is still exporting."""
        text = f"exporting: {progress}" if progress else "exporting"
        if self._export is None:
            self._export = self.progress.add_task(text, total=None)
        else:
            self.progress.update(self._export, description=text)

    def file_started(self, name: str, size: int | None) -> None:
        """A file begins to arrive."""
        if self._export is not None:
            self.progress.update(self._export, description="export complete", total=1, completed=1)
            self._export = None
        self._file = self.progress.add_task(name, total=size)

    def received(self, size: int) -> None:
        """More bytes of the current file."""
        if self._file is not None:
            self.progress.advance(self._file, size)

    def file_done(self) -> None:
        """The current file is whole."""
        if self._file is not None:
            task = self.progress.tasks[self._file]
            self.progress.update(self._file, total=task.completed)
            self._file = None


def summary(result: Result) -> list[str]:
    """Lines telling what the export brought."""
    outputs = [f for f in result.files if f.kind == "output"]
    resources = sum(f.lines for f in outputs)
    rate = resources / result.export_seconds if result.export_seconds else 0.0
    lines = [
        f"transactionTime {result.manifest.get('transactionTime', '?')}: {resources:,} "
        f"resources in {len(outputs)} files; export {result.export_seconds:.1f} s "
        f"({rate:,.0f} resources/s), download {result.download_seconds:.1f} s"
    ]
    by_type: dict[str, int] = {}
    for found in outputs:
        by_type[found.resource_type] = by_type.get(found.resource_type, 0) + found.lines
    lines += [f"  {name}: {count:,}" for name, count in sorted(by_type.items())]
    deleted = [f for f in result.files if f.kind == "deleted"]
    if deleted:
        lines.append(f"  deleted: {sum(f.lines for f in deleted):,} in {len(deleted)} files")
    for found in result.files:
        if found.listed_count is not None and found.listed_count != found.lines:
            lines.append(
                f"  WARNING {found.path.name}: {found.lines:,} lines, manifest says "
                f"{found.listed_count:,}"
            )
    if result.error_files:
        lines.append(f"  errors: {result.error_files} error files (see error/)")
    return lines
