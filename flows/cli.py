"""The ``coalign`` command line: sub-commands, one error handler, and signals.

Each sub-command lives in ``flows/commands/<name>.py`` and exposes
``add_parser(subparsers)`` which registers itself with ``set_defaults(run=...)``;
``run(args) -> int`` returns the exit code. A command module imports its heavy dependencies
inside ``run`` so that ``coalign --help`` and ``coalign --version`` start fast.

Errors: :func:`main` has the one top-level handler. Every expected failure prints one line,
``coalign <command>: error: <what is wrong and what to do>``, and exits with 2:
:class:`core.errors.CoalignError` (bad input, failed gates, catalog and fetch errors), rasterio
and GDAL errors (unreadable, truncated or corrupt rasters), operating-system errors (no space
left, permission denied, read-only file system, missing files), input that is not UTF-8 text,
a tile worker killed under the run, and running out of memory (with ``-v`` the traceback is
logged too). Anything else is a bug in coalign: it propagates with its traceback (exit status
1) so that it can be reported.

Signals: SIGINT (Ctrl-C) and SIGTERM (``timeout``, ``docker stop``, Kubernetes and Prefect
cancellation) both unwind the run so that temporary files are deleted and no partial output is
left; the exit status is 130 for SIGINT and 143 for SIGTERM (128 + the signal number). A second
SIGTERM while that cleanup runs is ignored. A signal whose exception Python could only report
(it arrived inside a callback, e.g. during an import) is delivered again, so it still ends the
run.
"""

from __future__ import annotations

import _thread
import argparse
import errno
import importlib
import importlib.metadata
import logging
import pkgutil
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from core.errors import CoalignError
from flows import commands

log = logging.getLogger("coalign")
# seconds after which a signal Python could only report is delivered again
REDELIVERY_DELAY_S = 0.05

# what to do about an OSError, by errno
_OS_ADVICE = {
    errno.ENOSPC: "free some space or write to another folder",
    errno.EDQUOT: "free some space or write to another folder",
    errno.EACCES: "check the permissions of the file and its folder, or choose another path",
    errno.EPERM: "check the permissions of the file and its folder, or choose another path",
    errno.EROFS: "write to a folder on a writable file system",
    errno.ENOENT: "check the path",
}


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM so that the run unwinds (``finally`` blocks run).

    A BaseException, as KeyboardInterrupt is: ``except Exception`` clauses do not stop it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def package_version() -> str:
    """The installed version of the ``coalign`` distribution ("unknown" when not installed)."""
    try:
        return importlib.metadata.version("coalign")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The ``coalign`` parser with every sub-command of ``flows/commands``.

    Building it imports the command modules only; they import their heavy dependencies (Prefect,
    MLflow, rasterio, torch…) when a command runs, so ``--help`` and ``--version`` stay fast.
    """
    parser = argparse.ArgumentParser(
        prog="coalign",
        description="Align optical imagery to SAR: register, score, discover and publish.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--version", action="version", version=f"coalign {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"flows.commands.{info.name}")
        module.add_parser(sub)
    return parser


def describe_failure(exc: BaseException) -> str | None:
    """One line for an expected failure (what is wrong and what to do); None for a bug.

    Args:
        exc: The exception that ended a command.
    """
    if isinstance(exc, CoalignError):
        return str(exc)
    if _is_raster_error(exc):
        from models.raster import gdal_detail

        detail = gdal_detail(exc)
        if "No such file or directory" in detail:
            return f"raster not found ({detail}); check the path"
        return (
            f"a raster could not be read or written ({detail}); check that the file is a "
            "complete GeoTIFF and that the output folder is writable"
        )
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"an input file is not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "check that each text input (CSV, JSON) is the file you meant"
        )
    if isinstance(exc, BrokenProcessPool):
        return (
            "a tile worker process died (killed, or out of memory); run again with fewer "
            "workers (--set workers=1 runs the tiles in this process)"
        )
    if isinstance(exc, MemoryError):
        return f"out of memory ({exc or 'no details'}); free memory or give smaller inputs"
    if isinstance(exc, OSError):
        return _describe_os_error(exc)
    return None


def _is_raster_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a rasterio or GDAL error (never one when rasterio was not imported)."""
    errors = sys.modules.get("rasterio.errors")
    gdal = sys.modules.get("rasterio._err")
    kinds = tuple(
        k
        for k in (getattr(errors, "RasterioError", None), getattr(gdal, "CPLE_BaseError", None))
        if isinstance(k, type)
    )
    return bool(kinds) and isinstance(exc, kinds)


def _describe_os_error(exc: OSError) -> str:
    """``<reason>: <file>; <advice>`` for an operating-system error."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    files = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
    where = f": {' -> '.join(files)}" if files else ""
    advice = _OS_ADVICE.get(exc.errno or 0)
    return f"{reason}{where}" + (f"; {advice}" if advice else "")


@contextmanager
def signals_unwind() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` in the main thread (once), and a
    KeyboardInterrupt or :class:`Terminated` that Python could only report (raised inside a
    callback, such as a weak reference's during an import) is raised again in the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    fired = False
    previous_hook = sys.unraisablehook

    def handler(signum: int, frame: object) -> None:
        nonlocal fired
        if not fired:  # a second SIGTERM must not interrupt the cleanup of the first
            fired = True
            raise Terminated(signum)

    def swallowed(unraisable: sys.UnraisableHookArgs) -> None:
        nonlocal fired
        exc = unraisable.exc_value
        if isinstance(exc, Terminated):
            fired = False  # the first delivery never reached the run
        if isinstance(exc, KeyboardInterrupt | Terminated):
            # from another thread once this hook has returned: delivered inside it, it would
            # only be reported again. Should it land in a callback once more, this hook runs
            # again
            signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
            later = threading.Timer(REDELIVERY_DELAY_S, _thread.interrupt_main, args=(signum,))
            later.daemon = True
            later.start()
        else:
            previous_hook(unraisable)

    previous = signal.signal(signal.SIGTERM, handler)
    sys.unraisablehook = swallowed
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Run one ``coalign`` command; the exit status (0 ok, 2 expected failure, 130/143 signal).

    Args:
        argv: The arguments after ``coalign`` (``sys.argv[1:]`` when not given).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        with signals_unwind():
            return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except Terminated as exc:
        print("terminated", file=sys.stderr)
        return 128 + exc.signum
    except Exception as exc:
        message = describe_failure(exc)
        if message is None:
            raise
        log.debug("the failure in full", exc_info=exc)
        print(f"coalign {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
