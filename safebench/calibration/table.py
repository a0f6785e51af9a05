"""The calibration as a rich table: one row per judge, then the jury-vs-best comparison."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table


def _pct(metric: dict[str, Any] | None) -> str:
    if not metric or metric.get("value") is None:
        return "-"
    text = f"{metric['value']:.1f}"
    ci = metric.get("ci")
    return f"{text} [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else text


def _kappa(metric: dict[str, Any] | None) -> str:
    if not metric or metric.get("value") is None:
        return "-"
    ci = metric.get("ci")
    return f"{metric['value']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def calibration_table(report: dict[str, Any]) -> Table:
    """Agreement, kappa, FPR, FNR and F1 (with 95% intervals) of every judge against the humans."""
    human = report["human"]
    ref = human["reference"]
    caption = [
        f"{report['pairs']} pairs; human reference: {ref['unsafe']} unsafe, {ref['safe']} safe; "
        f"{ref['ties']} ties and {ref['missing']} unlabelled left out"
    ]
    if human.get("fleiss_kappa") is not None:
        caption.append(f"annotators' Fleiss kappa {human['fleiss_kappa']:.2f}")
    comparison = report.get("comparison")
    if comparison:
        caption.append(comparison["conclusion"])
    caption += report.get("notes", [])
    table = Table(title="Judges against human labels (unsafe = positive)", caption=escape("\n".join(caption)))
    for column in ("judge", "scored", "excluded", "agreement %", "kappa", "FPR %", "FNR %", "F1 %"):
        table.add_column(column, justify="left" if column == "judge" else "right")
    for name, entry in report["judges"].items():
        excluded = ", ".join(f"{n} {k}" for k, n in entry["excluded"].items()) or "-"
        table.add_row(
            escape(name),
            str(entry["scored"]),
            escape(excluded),
            _pct(entry.get("agreement")),
            _kappa(entry.get("cohen_kappa")),
            _pct(entry.get("fpr")),
            _pct(entry.get("fnr")),
            _pct(entry.get("f1")),
        )
    return table
