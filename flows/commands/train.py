"""``coalign train``: train the learned descriptor of ``local`` and register it in MLflow."""

from __future__ import annotations

import argparse
import json

from flows.options import WORKDIR_HELP, add_json_option, add_overwrite_option

SOURCES_HELP = "cfog, vsff, srif, bigearthnet (../shared/data/pairs), synth (generated scenes)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``train`` subcommand."""
    p = sub.add_parser(
        "train",
        help="train the learned descriptor of local and register it in MLflow",
        description="Train the learned optical/SAR descriptor (descriptor=learned of local) on "
        "pre-aligned pairs, log the run (params, curves, manifest, weights) in MLflow and "
        "register the weights as a new version of coalign-descriptor; runs as the Prefect flow "
        "`train`. Use it with --set descriptor=learned --set "
        "model=models:/coalign-descriptor@champion.",
    )
    p.add_argument(
        "--sources",
        default="cfog,vsff,srif,bigearthnet",
        help=f"comma-separated source kinds: {SOURCES_HELP} (default the four real kinds)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="KIND",
        help="leave this source kind out (repeatable; leave-one-source-out)",
    )
    p.add_argument(
        "--pseudo-labels",
        metavar="WORKDIR",
        help="also train on the verified registrations of this working directory",
    )
    p.add_argument(
        "--min-confidence",
        type=float,
        default=0.5,
        help="with --pseudo-labels: least confidence of a pixel kept (default 0.5)",
    )
    p.add_argument("--steps", type=int, help="optimiser steps (default 600)")
    p.add_argument("--seed", type=int, default=0, help="seed of split, weights, patches")
    p.add_argument("--data", help="benchmark pairs folder (default ../shared/data/pairs)")
    p.add_argument("--workdir", help=WORKDIR_HELP)
    p.add_argument(
        "--mlflow-uri",
        help="MLflow tracking URI and registry (default sqlite:///<workdir>/mlflow.db or "
        "$COALIGN_MLFLOW_URI)",
    )
    p.add_argument(
        "--alias",
        default="champion",
        help="alias moved to the new version (default champion; 'none' for no alias)",
    )
    p.add_argument(
        "-o",
        "--output",
        help="also write the weights here (default <workdir>/descriptors/<model>-<version>.pt)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_overwrite_option(p)
    add_json_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check the options, run the ``train`` flow, print the new version (text or JSON)."""
    from bench.training_sets import parse_sources
    from core.errors import InputError
    from flows.server import prefect_api
    from flows.train import train_flow
    from models.cog import check_outputs

    sources = parse_sources(args.sources, args.exclude)
    if not sources and not args.pseudo_labels:
        raise InputError("--sources less --exclude leaves no source; name one more source")
    if args.steps is not None and args.steps < 1:
        raise InputError(f"--steps {args.steps}: give a positive number of steps")
    if args.output:
        check_outputs({"-o": args.output}, {}, overwrite=args.overwrite, makes_folders=True)
    alias = None if args.alias.strip().lower() in ("", "none") else args.alias.strip()
    with prefect_api():
        record = train_flow(
            sources=list(sources),
            steps=args.steps,
            seed=args.seed,
            workdir=args.workdir,
            mlflow_uri=args.mlflow_uri,
            alias=alias,
            output=args.output,
            pseudo_labels=args.pseudo_labels,
            min_confidence=args.min_confidence,
            data=args.data,
            progress_bar=not args.no_progress and not args.json,
        )
    if args.json:
        print(json.dumps(record, default=str))
        return 0
    final = ", ".join(f"{k} {v:.3f}" for k, v in record["final"].items() if k != "step")
    print(f"{record['model']} version {record['version']}: {record['uri']}")
    if record["alias_uri"]:
        print(f"  alias         {record['alias_uri']}")
    print(f"  weights       {record['weights']}")
    print(f"  pairs         {record['train_pairs']} train, {record['val_pairs']} validation")
    print(f"  final         {final}")
    print(f"  mlflow run    {record['mlflow_run_url']}")
    return 0
