"""Charts of a simulation report (``agent.simulation.report``) as PNG files.

Drawn on matplotlib's object API with the Agg canvas, so no global backend is chosen and nothing
needs a display.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["write_plots"]

# 8 x 5 inches at 100 dpi: 800 x 500 pixels.
_SIZE: Final = (8.0, 5.0)
_DPI: Final = 100
_BARS: Final = "#3b6ea5"
_MET: Final = "#3a8d4f"
_MISSED: Final = "#c4473a"


def _empty(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, fontsize=12)


def _count_bars(axes: Axes, histogram: Mapping[str, int]) -> None:
    """Labelled bars of whole counts on an axis from 0, also when every count is 0."""
    bars = axes.bar(list(histogram), list(histogram.values()), color=_BARS)
    axes.bar_label(bars, padding=2)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(0, max(1, *histogram.values()) * 1.12)


def _days_without_device(axes: Axes, report: Mapping[str, Any]) -> None:
    days = report["daysWithoutDevice"]
    histogram: Mapping[str, int] = days["histogram"]
    _count_bars(axes, histogram)
    axes.set_title(
        f"Days without a device (p50 {days['p50']}, p95 {days['p95']}, max {days['max']})"
    )
    axes.set_xlabel("Days from the move date until the client had the device")
    axes.set_ylabel("Devices")


def _deadlines(axes: Axes, report: Mapping[str, Any]) -> None:
    deadlines: Mapping[str, Mapping[str, Any]] = report["deadlinesMet"]
    axes.set_title("Deadlines met and missed")
    axes.set_ylabel("Deadlines")
    if not deadlines:
        _empty(axes, "No deadlines recorded")
        return
    kinds = list(deadlines)
    met = [deadlines[kind]["met"] for kind in kinds]
    missed = [deadlines[kind]["missed"] for kind in kinds]
    axes.bar(kinds, met, color=_MET, label="met")
    bars = axes.bar(kinds, missed, bottom=met, color=_MISSED, label="missed")
    axes.bar_label(bars, labels=[f"{deadlines[kind]['share']:.1%} met" for kind in kinds])
    axes.set_xlabel("Kind of deadline")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.margins(y=0.1)
    axes.tick_params(axis="x", labelrotation=15)


def _tasks_by_kind(axes: Axes, report: Mapping[str, Any]) -> None:
    by_kind: Mapping[str, int] = report["tasks"]["byKind"]
    axes.set_title("Open tasks at the end of the run, by kind")
    axes.set_xlabel("Open tasks (all organisations)")
    if not by_kind:
        _empty(axes, "No open tasks")
        return
    ordered = sorted(by_kind.items(), key=lambda item: item[1])
    bars = axes.barh([kind for kind, _ in ordered], [count for _, count in ordered], color=_BARS)
    axes.bar_label(bars, padding=2)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.margins(x=0.12)


def _messages_per_dossier(axes: Axes, report: Mapping[str, Any]) -> None:
    messages = report["messagesPerDossier"]
    histogram: Mapping[str, int] = messages["histogram"]
    _count_bars(axes, histogram)
    axes.set_title(
        f"Messages per dossier (p50 {messages['p50']}, p95 {messages['p95']}, "
        f"max {messages['max']}, mean {messages['mean']})"
    )
    axes.set_xlabel("Protocol messages exchanged for the dossier (all parties)")
    axes.set_ylabel("Dossiers")


_CHARTS: Final[dict[str, Callable[[Axes, Mapping[str, Any]], None]]] = {
    "days-without-device.png": _days_without_device,
    "deadlines.png": _deadlines,
    "tasks-by-kind.png": _tasks_by_kind,
    "messages-per-dossier.png": _messages_per_dossier,
}


def write_plots(report: dict[str, Any], folder: Path) -> list[Path]:
    """Draw the report's four charts as 800 x 500 PNG files in ``folder``; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in _CHARTS.items():
        figure = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
        FigureCanvasAgg(figure)
        draw(figure.add_subplot(), report)
        path = folder / name
        figure.savefig(path, format="png")
        written.append(path)
    return written
