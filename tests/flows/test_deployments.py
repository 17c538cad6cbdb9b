"""The service topology for real: `prefect deploy --all` from prefect.yaml, a CPU and a GPU process
worker, an
activation declared with `coalign activate --emit`, started by the deployment's event trigger,
fanning its pair out
to the register-pair deployment on the gpu pool through run_deployment."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.cli import main
from flows.commands.demo import SAR_ID
from tests.conftest import stop_process

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def _wait_for_workers(pools: tuple[str, ...], workers: list[subprocess.Popen]) -> None:
    """Return once every pool has a live worker (activations check that before fanning out)."""
    from flows.server import pool_problem

    deadline = time.monotonic() + 120
    while any(pool_problem(p) for p in pools) and time.monotonic() < deadline:
        assert all(w.poll() is None for w in workers), "a worker exited"
        time.sleep(1)
    assert not [pool_problem(p) for p in pools if pool_problem(p)]


def _emit(sample, work: Path, event: str, *extra: str) -> None:
    """`coalign activate --emit` of the sample event's good pair, method zero."""
    ev = sample["event"]
    argv = [
        "activate",
        "--emit",
        "--event",
        event,
        "--catalog",
        sample["catalogs"][0],
        "--catalog",
        sample["catalogs"][1],
        "--start",
        (ev.event_date - dt.timedelta(days=30)).isoformat(),
        "--end",
        (ev.event_date + dt.timedelta(days=30)).isoformat(),
        "--event-date",
        ev.event_date.isoformat(),
        "--method",
        "zero",
        "--tiepoints",
        f"{SAR_ID}={ev.pair.tiepoints}",
        "--workdir",
        str(work),
        *extra,
    ]
    assert main(argv) == 0


def _runs_of(client, deployment: str) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    return client.read_flow_runs(
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
        sort=FlowRunSort.START_TIME_ASC,
        limit=50,
    )


def _finished_activation(client, event: str):
    """The activation run the trigger started for ``event``, once it is final."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        runs = [r for r in _runs_of(client, "activation") if r.parameters.get("event") == event]
        if runs and runs[0].state and runs[0].state.is_final():
            return runs[0]
        time.sleep(2)
    raise AssertionError(f"no finished activation run for {event}: {runs}")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """Work pools gpu and cpu, the deployments of prefect.yaml, and one process worker per pool."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.settings import PREFECT_API_URL

    tmp = tmp_path_factory.mktemp("deploy")
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    with get_client(sync_client=True) as client:
        for pool in ("gpu", "cpu"):
            try:
                client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            except ObjectAlreadyExists:
                pass
    shutil.copyfile(
        REPO / "prefect.yaml", tmp / "prefect.yaml"
    )  # `prefect deploy` may write back to its file
    done = subprocess.run(
        [PREFECT, "--no-prompt", "deploy", "--all", "--prefect-file", str(tmp / "prefect.yaml")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    logs = {pool: open(tmp / f"worker-{pool}.log", "w") for pool in ("cpu", "gpu")}
    workers = [
        subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", pool, "--type", "process"],
            cwd=tmp,
            env=env,
            stdout=logs[pool],
            stderr=subprocess.STDOUT,
        )
        for pool in ("cpu", "gpu")
    ]
    try:
        _wait_for_workers(("cpu", "gpu"), workers)
        yield tmp
    finally:
        for w in workers:
            stop_process(w, timeout=20)
        for fh in logs.values():
            fh.close()


def test_deployments_and_trigger_exist(deployed):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        act = client.read_deployment_by_name("activation/activation")
        gpu = client.read_deployment_by_name("register-pair/register-pair")
        cpu = client.read_deployment_by_name("register-pair/register-pair-cpu")
        automations = client.read_automations_by_name("activation__automation_1")
    assert (act.work_pool_name, gpu.work_pool_name, cpu.work_pool_name) == ("cpu", "gpu", "cpu")
    assert act.parameter_openapi_schema["properties"]["aoi"]["description"].startswith(
        "Area of interest"
    )
    assert [s.schedule.cron for s in act.schedules] == ["0 */6 * * *"] and not act.schedules[
        0
    ].active
    assert len(automations) == 1 and automations[0].trigger.expect == {
        "coalign.activation.declared"
    }


def test_emitted_event_runs_an_activation_on_the_pools(deployed, sample, new_workdir):
    from mlflow.tracking import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    from stac.readers import load_json
    from stac.schemas import validate as validate_stac

    work = new_workdir("deployed")
    ev = sample["event"]
    _emit(sample, work, "deployed-quake")
    with get_client(sync_client=True) as client:
        act = _finished_activation(client, "deployed-quake")
        assert act.state.is_completed(), (
            f"activation ended {act.state}: {(deployed / 'worker-cpu.log').read_text()[-3000:]}"
        )
        registrations = [
            r for r in _runs_of(client, "register-pair") if r.parameters.get("workdir") == str(work)
        ]
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[act.id])
            ),
            sort=FlowRunSort.START_TIME_ASC,
            limit=20,
        )
    assert act.parameters["workdir"] == str(work) and act.parameters["methods"] == ["zero"]
    assert (
        act.parameters["tiepoints"] == {SAR_ID: str(ev.pair.tiepoints)}
        and act.parameters["gpu_work_pool"] == "gpu"
    )
    assert len(registrations) == 1 and registrations[0].state.is_completed()
    assert (
        registrations[0].work_pool_name == "gpu" and registrations[0].parameters["method"] == "zero"
    )
    fan_out = [c for c in children if c.name != registrations[0].name]
    assert fan_out, "the register-pairs subflow of the activation"

    (record,) = list((work / "pairs").glob("*/zero/*/record.json"))
    item = load_json(str(next((work / "catalog" / "deployed-quake").glob("*/*.json"))))
    validate_stac(item)
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("deployed-quake")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert (
        len(parents) == 1
        and len(children) == 1
        and children[0].data.tags["mlflow.parentRunId"] == parents[0].info.run_id
    )
    # the child run was logged by the gpu worker's flow run, under the parent the cpu worker's
    # activation created
    assert children[0].data.tags["prefect.flow_run_id"] == str(registrations[0].id)
    assert parents[0].data.tags["prefect.flow_run_id"] == str(act.id)


def test_a_cpu_only_site_registers_on_the_cpu_pool(deployed, sample, new_workdir):
    from prefect.client.orchestration import get_client

    work = new_workdir("cpu-only")
    _emit(sample, work, "cpu-quake", "--gpu-work-pool", "cpu")
    with get_client(sync_client=True) as client:
        act = _finished_activation(client, "cpu-quake")
        assert act.state.is_completed(), act.state
        (registration,) = [
            r
            for r in _runs_of(client, "register-pair-cpu")
            if r.parameters.get("workdir") == str(work)
        ]
        deployment = client.read_deployment(registration.deployment_id)
    assert (deployment.name, registration.work_pool_name) == ("register-pair-cpu", "cpu")
    assert registration.state.is_completed() and registration.parameters["device"] == "cpu"
    assert len(list((work / "catalog" / "cpu-quake").glob("*/*.json"))) == 1


def test_an_emitted_activation_to_a_pool_without_a_worker_fails_at_once(
    deployed, sample, new_workdir
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:  # a gpu pool whose machine is down
        client.create_work_pool(WorkPoolCreate(name="gpu-down", type="process"))
        client.create_deployment(
            flow_id=client.read_flow_by_name("register-pair").id,
            name="register-pair-down",
            work_pool_name="gpu-down",
            entrypoint="flows/register_pair.py:register_pair",
            path=str(REPO),
        )
    work = new_workdir("no-worker")
    _emit(sample, work, "down-quake", "--gpu-work-pool", "gpu-down")
    with get_client(sync_client=True) as client:
        act = _finished_activation(client, "down-quake")
        sent = _runs_of(client, "register-pair-down")
    assert act.state.is_failed() and "work pool 'gpu-down' has no live worker" in act.state.message
    assert sent == []  # nothing waits on the pool
