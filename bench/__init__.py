"""The benchmark: real-pair cases, SRIF checks, scale cases, per-run workers and reports."""
