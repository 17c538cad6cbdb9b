"""Prefect tasks: thin, retried, cached units of work over models/ and stac/."""
