"""Running one Great Expectations suite on a DataFrame and reporting its failures."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ValidationFailed

_MAX_ROWS_REPORTED = 10


@dataclass(frozen=True)
class Failure:
    """One failed expectation for one scene (or CSV line)."""

    subject: str
    check: str
    expectation: str
    column: str
    observed: Any

    def line(self) -> str:
        where = f" ({self.column})" if self.column else ""
        return (
            f"{self.subject}: {self.check}{where} — observed {self.observed!r} [{self.expectation}]"
        )


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of one suite: ``ok`` when every expectation held."""

    subject: str
    failures: tuple[Failure, ...] = ()
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_markdown(self) -> str:
        if self.ok:
            return f"**{self.subject}**: all {self.checked} expectations met"
        rows = "\n".join(
            f"| {f.subject} | {f.check} | {f.column or '—'} | {_md(f.observed)} "
            f"| `{f.expectation}` |"
            for f in self.failures
        )
        return (
            f"**{self.subject}**: {len(self.failures)} failure(s) in {self.checked} "
            "expectations\n\n"
            "| scene | check | field | observed | expectation |\n|---|---|---|---|---|\n" + rows
        )

    def raise_if_failed(self) -> None:
        require_valid(self)

    def __add__(self, other: ValidationReport) -> ValidationReport:
        subject = (
            self.subject if other.subject == self.subject else f"{self.subject}; {other.subject}"
        )
        return ValidationReport(
            subject, self.failures + other.failures, self.checked + other.checked
        )


def require_valid(report: ValidationReport) -> ValidationReport:
    """``report`` when it passed; else raise :class:`ValidationFailed` with every failure spelled
    out."""
    if not report.ok:
        lines = "\n  ".join(f.line() for f in report.failures)
        raise ValidationFailed(
            f"{report.subject} failed validation ({len(report.failures)} failure(s)):\n  {lines}"
        )
    return report


def _md(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")[:120]


def gx() -> Any:
    """The ``great_expectations`` module, imported with analytics off."""
    # analytics off before the first import: the gate must never phone home
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations

    return great_expectations


def _batch(df: pd.DataFrame) -> Any:
    """``df`` as a batch of an ephemeral context (progress bars off)."""
    context = gx().get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
    except (ImportError, AttributeError):  # cosmetic only
        pass
    return (
        context.data_sources.add_pandas("coalign")
        .add_dataframe_asset("table")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": df})
    )


def run_suite(
    df: pd.DataFrame, expectations: list[Any], subject: str, id_column: str
) -> ValidationReport:
    """Validate ``df`` against ``expectations`` in an ephemeral context; one row per failure.

    Args:
        df: The table (one row per scene or tiepoint).
        expectations: Great Expectations expectations.
        subject: What the table describes, for the report.
        id_column: The column naming a row's subject in failures (scene id, CSV line).
    """
    batch = _batch(df)
    suite = gx().ExpectationSuite(name="coalign-gate", expectations=expectations)
    result = batch.validate(suite, result_format="COMPLETE")
    failures: list[Failure] = []
    for r in result.results:
        if not r.success:
            failures += _failures(r, df, subject, id_column)
    return ValidationReport(subject, tuple(failures), len(expectations))


def _failures(r: Any, df: pd.DataFrame, subject: str, id_column: str) -> list[Failure]:
    """The failures of one expectation result: one per unexpected row (at most ten, then a
    count), or one for the whole table."""
    config = r.expectation_config
    column = str(config.kwargs.get("column") or ", ".join(config.kwargs.get("column_list") or []))
    check = config.description or config.type
    res = r.result or {}
    if r.exception_info and r.exception_info.get("raised_exception"):
        message = r.exception_info.get("exception_message")
        return [Failure(subject, check, config.type, column, message)]
    index = res.get("unexpected_index_list")
    if not index:
        return [Failure(subject, check, config.type, column, _plain(res.get("observed_value")))]
    failures = []
    values = res.get("unexpected_list") or [None] * len(index)
    for i, value in list(zip(index, values, strict=False))[:_MAX_ROWS_REPORTED]:
        row = i.get("index", i) if isinstance(i, dict) else i
        who = str(df.loc[row, id_column]) if id_column in df and row in df.index else subject
        failures.append(Failure(who, check, config.type, column, _plain(value)))
    if len(index) > _MAX_ROWS_REPORTED:
        more = f"… and {len(index) - _MAX_ROWS_REPORTED} more rows"
        failures.append(Failure(subject, check, config.type, column, more))
    return failures


def _plain(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
