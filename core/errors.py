"""Errors that reach a person: each says what is wrong, where, and what to do."""

from __future__ import annotations


class CoalignError(Exception):
    """Base class of every error coalign reports to a user (CLI exit code 2)."""


class InputError(CoalignError):
    """Bad input: a missing or unreadable file, wrong bands, no CRS, no overlap, bad CSV."""


class ValidationFailed(CoalignError):
    """A data-quality gate rejected a scene, a pair or a tiepoint table."""


class RegistrationError(CoalignError):
    """Registration could not run (as opposed to running and finding few matches)."""


class CatalogError(CoalignError):
    """A STAC catalog, item or API could not be read or written."""


class FetchError(CoalignError):
    """An asset could not be downloaded or failed its checksum."""
