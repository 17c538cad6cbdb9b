"""Prefect tasks over ``tracking/``: open an activation's MLflow parent run, log a pair run,
close the parent (retried: the store may be a server)."""

from __future__ import annotations

from prefect import task

from tracking.runs import finish_activation_run, log_pair_run, start_activation_run

track_activation_start = task(
    start_activation_run, name="track-activation-start", retries=2, retry_delay_seconds=2
)
track_pair = task(log_pair_run, name="track-pair", retries=2, retry_delay_seconds=2)
track_activation_end = task(
    finish_activation_run, name="track-activation-end", retries=2, retry_delay_seconds=2
)
