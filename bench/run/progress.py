"""The run's progress bar: forward passes done and left, elapsed, ETA and rate on one line, the
cell being computed on the line below, readable at 80 columns."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def bar(enabled: bool = True):
    """The run's progress bar: forward passes done and left, elapsed, ETA and the session's
    average rate on one line, the cell being computed on the line below (so both fit 80 columns)."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn,
                               TextColumn, TimeElapsedColumn)
    from rich.table import Column
    from rich.text import Text

    def session_rate(task) -> float | None:
        """Passes (or cells) done since this session started, per second of it; None before any."""
        done = task.completed - task.fields.get("initial", 0)
        return done / task.elapsed if task.elapsed and done > 0 else None

    class SteadyRemaining(ProgressColumn):
        """Time left at this session's average rate (passes done since it started over its
        elapsed time). rich's own estimate follows the last 30 s, and cells differ a
        thousandfold in cost per pass: it jumped 0:01:05 -> 0:41:11 -> 0:00:10 on `quick`."""

        def render(self, task):
            rate = session_rate(task)
            if rate is None or task.total is None:
                return Text("-:--:--")
            left = max(task.total - task.completed, 0) / rate
            hours, rest = divmod(int(round(left)), 3600)
            return Text(f"{hours}:{rest // 60:02d}:{rest % 60:02d}")

    class SteadyRate(ProgressColumn):
        """Passes per second since this session started, the rate SteadyRemaining uses. The
        last cell's own rate said "2 passes/s" at the end of `quick`: its last cell, a study,
        plans few passes and spends its time elsewhere."""

        def render(self, task):
            rate = session_rate(task)
            if rate is None:
                return Text("")
            shown = f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}"
            return Text(f"{shown} {task.fields.get('unit', 'passes')}/s")

    class CellProgress(Progress):
        def get_renderables(self):
            yield self.make_tasks_table(self.tasks)
            for task in self.tasks:
                if task.fields.get("current"):
                    yield Text(f"  {task.fields['current']}", style="dim", no_wrap=True,
                               overflow="ellipsis")

    def fixed():  # never cut: the numbers are what a reader looks for
        return Column(no_wrap=True)

    bar = CellProgress(
        TextColumn("[bold]{task.description}", table_column=fixed()), BarColumn(bar_width=None),
        MofNCompleteColumn(table_column=fixed()), TimeElapsedColumn(table_column=fixed()),
        TextColumn("ETA", table_column=fixed()), SteadyRemaining(table_column=fixed()),
        SteadyRate(table_column=fixed()),
        disable=not enabled, expand=True,
    )
    with bar:
        yield bar


class ReportStages:
    """`bench report`'s stages as lines on stderr, each as it starts, with the time since the
    report began: a large run's report takes a minute, and a silent minute after a finished bar
    reads as a hang. Call it with each stage's name; `done()` prints the total."""

    def __init__(self, stages: tuple[str, ...], stream=None):
        import sys
        import time

        self.stages, self.stream, self.clock = stages, stream or sys.stderr, time.perf_counter
        self.started = self.clock()

    def __call__(self, name: str) -> None:
        self._line(f"report {self.stages.index(name) + 1}/{len(self.stages)}: {name}")

    def done(self) -> None:
        self._line("report written")

    def _line(self, text: str) -> None:
        seconds = int(self.clock() - self.started)
        print(f"  [{seconds // 60}:{seconds % 60:02d}] {text}", file=self.stream, flush=True)
