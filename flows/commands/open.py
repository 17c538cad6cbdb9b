"""``coalign open``: serve the published catalog's HTML view and say where the MLflow and Prefect
UIs are."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from flows.options import WORKDIR_HELP
from flows.workdir import CATALOG_URL_DEFAULT

DEFAULT_PORT = urlparse(CATALOG_URL_DEFAULT).port or 8765
PREFECT_UI_DEFAULT = "http://127.0.0.1:4200"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "open",
        help="browse the results: serve the published catalog's HTML view on 127.0.0.1",
        description="Serve <workdir>/catalog (its index.html view of every activation, pair and "
        "method, the COGs, QA pictures and STAC JSON) on 127.0.0.1 until Ctrl-C, and print the "
        "addresses of the catalog view, the MLflow runs of each experiment and the Prefect UI.",
    )
    p.add_argument("--workdir", help=WORKDIR_HELP)
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port of the catalog server (default {DEFAULT_PORT}, the address that links in "
        "MLflow and Prefect point at)",
    )
    p.add_argument("--print", action="store_true", help="print the addresses and exit")
    p.add_argument(
        "--mlflow-ui",
        action="store_true",
        help="also start `mlflow ui` for the working directory's local MLflow store",
    )
    p.set_defaults(run=run)


def _catalog(workdir: str | None) -> Path:
    """The published catalog folder of the working directory; InputError when there is none."""
    from core.errors import InputError
    from flows.workdir import Workdir
    from stac.publish.view import PAGE, write_view

    folder = Workdir.of(workdir).catalog
    if not (folder / "catalog.json").is_file():
        raise InputError(
            f"no published catalog at {folder / 'catalog.json'}; run `coalign activate` or "
            "`coalign demo` first, or give the --workdir that holds it"
        )
    if not (folder / PAGE).is_file():
        write_view(folder)  # a catalog published before the view existed
    return folder


def _mlflow_lines(workdir: str | None, start_ui: bool) -> tuple[list[str], list[str] | None]:
    """What to print about the MLflow store, and the ``mlflow ui`` command to start (if asked)."""
    from flows.workdir import Workdir
    from tracking.store import client, runs_url, tracking_uri, ui_url

    root = Workdir.of(workdir).root
    uri = tracking_uri(root)
    local = not uri.startswith(("http://", "https://"))
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).is_file():
        return [f"MLflow: no runs tracked yet ({uri})"], None
    lines = [f"MLflow store {uri}:"]
    experiments = [e for e in client(uri).search_experiments() if e.name != "Default"]
    for exp in sorted(experiments, key=lambda e: e.name):
        lines.append(f"  {exp.name}: {runs_url(uri, exp.experiment_id)}")
    if not experiments:
        lines.append("  no experiments yet")
    ui = urlparse(ui_url(uri))
    command = None
    if local:
        command = [
            "mlflow", "ui", "--backend-store-uri", uri,
            "--host", ui.hostname or "127.0.0.1", "--port", str(ui.port or 5000),
        ]  # fmt: skip
        if not start_ui:
            lines.append(
                f"  start the MLflow UI: {' '.join(command)}  (or coalign open --mlflow-ui)"
            )
    return lines, command if start_ui else None


def _prefect_line() -> str:
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    if PREFECT_API_URL.value():
        return f"Prefect UI: {PREFECT_UI_URL.value() or PREFECT_API_URL.value()}"
    return (
        "Prefect: flows run on a temporary server (no PREFECT_API_URL); to keep and browse runs, "
        f"start `prefect server start` (UI {PREFECT_UI_DEFAULT}) and set "
        f"PREFECT_API_URL={PREFECT_UI_DEFAULT}/api"
    )


def run(args: argparse.Namespace) -> int:
    from stac.publish.serve import HOST, catalog_server, served_url

    folder = _catalog(args.workdir)
    mlflow, ui_command = _mlflow_lines(args.workdir, args.mlflow_ui and not args.print)
    url = f"http://{HOST}:{args.port}/"
    server = None if args.print else catalog_server(folder, args.port)
    if server is not None:
        url = served_url(server) + "/"
    print(f"Catalog view: {url}  ({folder})", *mlflow, _prefect_line(), sep="\n", flush=True)
    if server is None:
        return 0
    ui = subprocess.Popen([sys.executable, "-m", *ui_command]) if ui_command else None
    print("Serving the catalog; Ctrl-C stops.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 0
    finally:
        server.server_close()
        if ui is not None:
            ui.terminate()
            ui.wait(10)
    return 0
