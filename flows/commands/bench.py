"""``coalign bench``: accuracy, runtime and peak memory of the methods on warped real pairs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import InputError
from flows.options import add_overwrite_option
from models.method_names import SET_GRAMMAR

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "pairs"


def _settings(items: list[str] | None, methods: list[str]) -> tuple[tuple[str, str, str], ...]:
    """``--set [METHOD:]KEY=VALUE`` options as (method, key, value) triples."""
    from models.methods import parse_set_options

    per_method = parse_set_options(items, methods)
    return tuple((m, k, v) for m, kv in per_method.items() for k, v in kv.items())


# --scale scene sides allowed, optical pixels
MIN_SCALE_SIDE, MAX_SCALE_SIDE = 256, 20000


def _sizes(text: str) -> tuple[int, ...]:
    """``--sizes`` as scene sides; InputError for text that is not integers or a side out of
    range."""
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise InputError(
            f"--sizes {text!r}: expected comma-separated integers such as 2500,5000,10000"
        ) from None
    if not sizes or any(s < MIN_SCALE_SIDE or s > MAX_SCALE_SIDE for s in sizes):
        raise InputError(
            f"--sizes {text!r}: each size must be between {MIN_SCALE_SIDE} and "
            f"{MAX_SCALE_SIDE} pixels"
        )
    return sizes


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``bench`` subcommand."""
    p = sub.add_parser(
        "bench",
        help="benchmark the methods on warped real optical/SAR pairs (accuracy, time, memory)",
        description=(
            "Build misaligned cases from the pre-aligned real pairs (optical on a UTM grid, SAR "
            "on its own coarser, shifted, sometimes rotated grid, moved by a known smooth "
            "SN9-like field), run each method on each case in its own process, print per-case "
            "and per-kind errors (SN9 rules) against zero shift and the oracle affine, runtime, "
            "peak memory and the accuracy targets; write JSON. --scale: end-to-end time and "
            "memory on 2500²–20000² scenes tiled from the real pairs."
        ),
    )
    p.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"the real pairs folder (default {DEFAULT_DATA})",
    )
    p.add_argument(
        "--work",
        type=Path,
        default=Path("bench-out"),
        help="cache of cases and runs (default bench-out)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="JSON report (default bench-out/results.json, or bench-out/scale.json with --scale; "
        "a named --out that exists needs --overwrite)",
    )
    add_overwrite_option(p)
    _add_selection_options(p)
    _add_run_options(p)
    p.set_defaults(run=run)


def _add_selection_options(p: argparse.ArgumentParser) -> None:
    """Which methods, settings and cases run."""
    p.add_argument(
        "--method",
        action="append",
        dest="methods",
        help="method to run (repeatable; default zero, global-affine, local)",
    )
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        metavar=SET_GRAMMAR,
        help="override a method setting, e.g. local:interpolation=tps (repeatable)",
    )
    p.add_argument(
        "--cases",
        help="comma-separated kinds (cfog,vsff,srif,bigearthnet; urban, simulated, runs only "
        "when named), case names or globs (srif-0*, urban-0*)",
    )
    p.add_argument("--quick", action="store_true", help="a few cases per kind (smoke run)")
    p.add_argument("--seed", type=int, default=0, help="seed of the case recipes (default 0)")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """How the runs go: device, time limit, cache, scale mode, exit status."""
    p.add_argument(
        "--device",
        default="cpu",
        choices=["auto", "cpu", "cuda"],
        help="where learned matchers run (default cpu); --scale with cuda: local runs on the "
        "CPU and on the GPU (rows local and local@cuda)",
    )
    p.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds allowed per run (default 3600)"
    )
    p.add_argument("--rebuild", action="store_true", help="rebuild cached cases")
    p.add_argument(
        "--height",
        action="store_true",
        help="give each case's height model (dsm.tif, dtm.tif: urban cases; with --scale a "
        "generated DSM/DTM and SAR geometry, to measure their cost) to the methods",
    )
    p.add_argument(
        "--scale",
        action="store_true",
        help="scale benchmark: end-to-end time and peak RSS per scene size",
    )
    p.add_argument(
        "--sizes",
        default="2500,5000,10000",
        help="--scale scene sides in optical pixels, 256 to 20000 (default 2500,5000,10000)",
    )
    p.add_argument(
        "--scale-kind",
        default="normal",
        choices=["normal", "repetitive"],
        help="--scale ground: the tiled mosaic (normal), or the same repeating every 250-500 m "
        "(repetitive: cases scale-rep-<side>)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a gated target fails")


def _log(msg: str) -> None:
    print(msg, flush=True)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark (or ``--scale``), print its report, write its JSON; 1 when ``--strict``
    and a target fails."""
    from bench.report import format_report, write_json
    from bench.run import BenchConfig, default_methods, run_benchmark
    from flows.descriptor_options import resolve_model_triples
    from models.cog import JSON, check_outputs

    if args.out is not None:  # the default report in --work is replaced on every run
        check_outputs(
            {"--out": args.out},
            {},
            overwrite=args.overwrite,
            formats={"--out": JSON},
            makes_folders=True,
        )
    methods = list(args.methods or ()) or default_methods()
    conf = BenchConfig(
        data=args.data,
        work=args.work,
        methods=tuple(args.methods or ()),
        settings=resolve_model_triples(_settings(args.settings, methods)),
        cases=tuple(c.strip() for c in (args.cases or "").split(",") if c.strip()),
        quick=args.quick,
        seed=args.seed,
        device=args.device,
        timeout_s=args.timeout,
        rebuild=args.rebuild,
        height=args.height,
    )
    if args.scale:
        from bench.scale_run import format_scale_report, run_scale

        scale = run_scale(conf, _sizes(args.sizes), _log, args.scale_kind == "repetitive")
        text, data, targets = format_scale_report(scale), scale.to_json(), scale.targets
        out = args.out or args.work / "scale.json"
    else:
        report = run_benchmark(conf, _log)
        text, data, targets = format_report(report), report.to_json(), report.targets
        out = args.out or args.work / "results.json"
    print()
    print(text)
    write_json(data, out)
    print(f"\nJSON: {out}")
    sys.stdout.flush()
    failed = [t for t in targets if t.gated and not t.passed]
    return 1 if args.strict and failed else 0
