"""prefect.yaml read by Prefect's own models: real entrypoints, parameters the flows take, a trigger
whose templates
turn a `coalign activate --emit` payload back into the activation's parameters."""

from __future__ import annotations

import copy
import importlib
import inspect
import uuid
from pathlib import Path

import pytest
import yaml

from flows.cli import build_parser
from flows.commands.activate import EVENT_NAME, activation_parameters

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project():
    from prefect.cli.deploy._models import PrefectYamlModel

    doc = yaml.safe_load((REPO / "prefect.yaml").read_text())
    PrefectYamlModel.model_validate(doc)  # the schema `prefect deploy` reads it with
    return doc


def _flow(entrypoint: str):
    path, name = entrypoint.split(":")
    return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)


def _deployment(project: dict, name: str) -> dict:
    return next(d for d in project["deployments"] if d["name"] == name)


def test_deployments_reference_real_flows_and_parameters(project):
    from prefect import Flow
    from prefect.utilities.callables import parameter_schema

    assert {d["name"] for d in project["deployments"]} == {
        "activation",
        "register-pair",
        "register-pair-cpu",
    }
    for d in project["deployments"]:
        flow = _flow(d["entrypoint"])
        assert isinstance(flow, Flow)
        signature = inspect.signature(flow.fn).parameters
        assert set(d["parameters"]) <= set(signature), d["name"]
        flow.validate_parameters(
            {
                **{
                    k: v.default
                    for k, v in signature.items()
                    if v.default is not inspect.Parameter.empty
                },
                **({"optical": {}, "sar": {}} if "optical" in signature else {}),
                **d["parameters"],
            }
        )
        schema = parameter_schema(flow).model_dump()["properties"]
        undocumented = [p for p, s in schema.items() if not s.get("description")]
        assert not undocumented, (
            f"{d['name']}: parameters without a description in the UI: {undocumented}"
        )
    assert _flow(_deployment(project, "register-pair")["entrypoint"]).name == "register-pair"
    assert _deployment(project, "register-pair")["work_pool"]["name"] == "gpu"
    assert _deployment(project, "register-pair-cpu")["work_pool"]["name"] == "cpu"
    # the activation sends registrations to the pool the register-pair deployment listens on
    assert _deployment(project, "activation")["parameters"]["gpu_work_pool"] == "gpu"


def test_schedule_and_trigger_validate(project):
    from prefect.cli.deploy._models import RawScheduleConfig
    from prefect.cli.deploy._triggers import _initialize_deployment_triggers

    act = _deployment(project, "activation")
    schedule = RawScheduleConfig.model_validate(act["schedules"][0])
    assert schedule.cron == "0 */6 * * *" and schedule.active is False
    (trigger,) = _initialize_deployment_triggers("activation", copy.deepcopy(act["triggers"]))
    assert trigger.expect == {EVENT_NAME} and trigger.enabled
    assert set(trigger.parameters) <= set(inspect.signature(_flow(act["entrypoint"]).fn).parameters)


def _render(trigger_parameters: dict, payload: dict, resource_id: str) -> dict:
    """The trigger's parameters as Prefect's run-deployment action renders them for an event."""
    from prefect.server.events.actions import RunDeployment
    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.types._datetime import now
    from prefect.utilities.schema_tools.hydration import HydrationContext, hydrate

    params = copy.deepcopy(trigger_parameters)
    RunDeployment._upgrade_v1_templates(params)
    event = ReceivedEvent(
        occurred=now("UTC"),
        event=EVENT_NAME,
        resource={"prefect.resource.id": resource_id},
        payload=payload,
        id=uuid.uuid4(),
    )
    return hydrate(
        params,
        HydrationContext(render_jinja=True, jinja_context={"event": event}, raise_on_error=True),
    )


def test_emitted_payload_renders_into_activation_parameters(project, tmp_path):
    from flows.activation import activation

    csv = tmp_path / "tp.csv"
    csv.write_text("sar_row,sar_col,optical_row,optical_col\n1,2,3,4\n")
    args = build_parser().parse_args(
        [
            "activate",
            "--event",
            "Türkiye quake",
            "--catalog",
            "https://example.org/events/catalog.json",
            "--catalog",
            str(tmp_path),
            "--bbox",
            "36.9,37.0,37.1,37.2",
            "--start",
            "2023-01-01",
            "--end",
            "2023-03-01T00:00:00Z",
            "--event-date",
            "2023-02-06T01:17Z",
            "--method",
            "zero",
            "--method",
            "local",
            "--set",
            "local:levels=4,2,1",
            "--tiepoints",
            f"sar-1={csv}",
            "--workdir",
            str(tmp_path / "w"),
            "--max-gap-days",
            "30",
            "--fallback-in-process",
            "--pair-timeout",
            "600",
            "--dem-collection",
            "cop-dem-glo-30",
            "--emit",
        ]
    )
    payload = activation_parameters(args)
    act = _deployment(project, "activation")
    rendered = _render(act["triggers"][0]["parameters"], payload, "coalign.event.turkiye-quake")
    for key, value in payload.items():
        assert rendered[key] == value, key  # lists and dicts keep their types through the templates
    assert rendered["settings"] == {"local": {"levels": "4,2,1"}} and rendered["methods"] == [
        "zero",
        "local",
    ]
    assert rendered["gpu_work_pool"] == "gpu"  # not given: the deployment's default
    assert rendered["fallback_in_process"] is True and rendered["pair_timeout_s"] == 600
    assert rendered["dem_collection"] == "cop-dem-glo-30" and rendered["dem"] is None
    activation.validate_parameters(rendered)


def test_minimal_payload_gets_the_deployment_defaults(project):
    from flows.activation import activation

    act = _deployment(project, "activation")
    rendered = _render(
        act["triggers"][0]["parameters"],
        {"event": "flood", "catalogs": ["https://example.org/c.json"]},
        "coalign.event.flood",
    )
    defaults = {k: v.default for k, v in inspect.signature(activation.fn).parameters.items()}
    for key, value in rendered.items():
        if key in ("event", "catalogs"):
            continue
        expected = act["parameters"].get(key, defaults[key])
        assert value == expected, key
    activation.validate_parameters(rendered)
