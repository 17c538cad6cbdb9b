"""`coalign demo` end to end with the default methods, and `coalign activate` on bad input."""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest

from flows.cli import main


def coalign(*argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``coalign ARGV``.

    Not capsys: Prefect's log handlers keep the stream they first saw, and capsys closes its streams
        after each test.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_demo_end_to_end(new_workdir):
    from mlflow.tracking import MlflowClient

    from flows.workdir import Workdir
    from stac.readers import load_json
    from stac.schemas import validate as validate_stac
    from tracking.store import runs_url

    work = new_workdir("demo")
    code, out, _ = coalign("demo", "--workdir", str(work), "--size", "160")
    assert code == 0, out
    scores = {
        m: float(v)
        for m, v in re.findall(r"^\s+(local|zero) \d+\.\d+\.\d+\s+([\d.]+) m", out, re.M)
    }
    assert set(scores) == {"local", "zero"}, out
    assert scores["zero"] > 25 and scores["local"] < 0.15 * scores["zero"], (
        out
    )  # ~30 m offset, aligned to a few px
    assert str(work / "catalog" / "catalog.json") in out
    assert f"coalign open --workdir {work}" in out
    view = Workdir.of(work).catalog_url(work / "catalog" / "index.html")
    assert f"catalog view   {view}\n" in out

    catalog = load_json(str(work / "catalog" / "catalog.json"))
    validate_stac(catalog)
    items = sorted((work / "catalog" / "sample-earthquake").glob("*/*.json"))
    assert len(items) == 2
    for path in items:
        item = load_json(str(path))
        validate_stac(item)
        method = item["properties"]["coalign:method"]
        assert item["properties"]["coalign:score_mean_m"] == pytest.approx(scores[method], abs=0.01)

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("sample-earthquake").experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {
        r.data.params["method"]: r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    assert set(children) == {"local", "zero"}
    uri = f"sqlite:///{work / 'mlflow.db'}"
    assert f"MLflow runs    {runs_url(uri, parent.info.experiment_id)} " in out
    local = children["local"]
    assert local.data.metrics["mean_m"] == pytest.approx(scores["local"], abs=0.01)
    assert local.data.metrics["matches"] > 0 and local.data.params["config.levels"]
    assert parent.data.metrics["mean_m_local"] == pytest.approx(scores["local"], abs=0.01)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["activate", "--bbox", "1,2,3,4"], "give at least one --catalog or --stac-api"),
        (["activate", "--catalog", "c.json", "--bbox", "1,2,3"], "AOI"),
        (["activate", "--catalog", "c.json", "--bbox", "3,2,1,4"], "minx < maxx"),
        (
            ["activate", "--catalog", "c.json", "--start", "yesterday"],
            "--start 'yesterday': not an ISO 8601",
        ),
        (
            ["activate", "--catalog", "c.json", "--tiepoints", "x.csv"],
            "expected SCENE_OR_PAIR_ID=CSV",
        ),
        (
            ["activate", "--catalog", "c.json", "--tiepoints", "id=/nonexistent.csv"],
            "tiepoint file /nonexistent.csv not found",
        ),
        (["activate", "--catalog", "c.json", "--set", "levels"], "expected [METHOD:]KEY=VALUE"),
    ],
)
def test_activate_rejects_bad_options(argv, message):
    code, _, err = coalign(*argv)
    assert code == 2
    assert err.startswith("coalign activate: error:") and message in err, err


def test_emit_needs_a_prefect_server():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: None}):
        code, _, err = coalign("activate", "--catalog", "c.json", "--emit")
    assert code == 2 and "PREFECT_API_URL" in err


def test_unknown_gpu_pool_is_a_clear_error(sample, new_workdir):
    ev = sample["event"]
    argv = [
        "activate",
        "--event",
        "pool-test",
        "--catalog",
        sample["catalogs"][0],
        "--catalog",
        sample["catalogs"][1],
        "--event-date",
        ev.event_date.isoformat(),
        "--method",
        "zero",
        "--workdir",
        str(new_workdir("pool")),
        "--gpu-work-pool",
        "no-such-pool",
    ]
    code, _, err = coalign(*argv)
    assert code == 2 and "no register-pair deployment on work pool 'no-such-pool'" in err


def test_activate_with_nothing_in_the_window(sample, new_workdir):
    work = new_workdir("empty")
    code, out, _ = coalign(
        "activate",
        "--event",
        "empty",
        "--catalog",
        sample["catalogs"][0],
        "--catalog",
        sample["catalogs"][1],
        "--start",
        "2020-01-01",
        "--end",
        "2020-02-01",
        "--workdir",
        str(work),
        "--json",
    )
    assert code == 0
    summary = json.loads(out)
    assert (summary["scenes"], summary["pairs"], summary["runs"], summary["failed"]) == (0, 0, 0, 0)


def test_activate_prints_a_text_summary_and_fails_when_every_registration_failed(
    sample, new_workdir
):
    from mlflow.tracking import MlflowClient

    work = new_workdir("all-bad")
    code, out, err = coalign(
        "activate",
        "--event",
        "all-bad",
        "--catalog",
        sample["bad_catalogs"][0],
        "--catalog",
        sample["bad_catalogs"][1],
        "--event-date",
        sample["event"].event_date.isoformat(),
        "--method",
        "zero",
        "--workdir",
        str(work),
    )
    assert code == 1, out + err
    head = "\ncoalign activate — event all-bad: 1 pair(s), 1 registration(s), 1 failed"
    assert out.startswith(head), out
    assert re.search(r"^  zero +FAILED: .*BAD.*checksum mismatch", out, re.M), out
    assert "\n  the registration failed\n" in out and "MLflow runs    http" in out
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    (parent,) = client.search_runs([client.get_experiment_by_name("all-bad").experiment_id])
    assert parent.info.status == "FAILED" and parent.data.metrics["failed"] == 1
