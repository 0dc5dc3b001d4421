"""A UCloud job specification becomes a JobSpec: argv, product bounds, time, replicas."""

from __future__ import annotations

from typing import Any

import pytest

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import ProductRef
from jobyard.ucloud import Application, Catalog, Product
from jobyard.ucloud.jobs import catalog_job_spec, job_spec, parse_specification
from tests.unit.ucloud_samples import (
    application,
    product,
    seed_provider_create,
    seed_user_create,
)

WEB_APP = application([{"type": "word", "word": "web-server"}], [], name="acme-web-application")
BATCH = application(
    [{"type": "word", "word": "acme-batch"}, {"type": "var", "variableNames": ["n"]}],
    [{"type": "integer", "name": "n", "optional": True}],
)
CATALOG = Catalog(
    [Product.model_validate(product(name="example-compute", cpu=2, memoryInGigs=4))],
    [Application.model_validate(WEB_APP), Application.model_validate(BATCH)],
)


def spec_of(**changes: Any) -> dict[str, Any]:
    raw = seed_user_create()
    raw.update(changes)
    return raw


def test_seed_001s_create_item_becomes_a_bounded_timed_job() -> None:
    spec, app, prod = catalog_job_spec(CATALOG, parse_specification(seed_user_create()))
    assert (spec.command, spec.args) == ("web-server", ())
    assert (spec.resources.max_cpu, spec.resources.max_memory) == (200, 4096)
    assert spec.time_limit_seconds == 5 * 3600
    assert spec.replicas == 1
    assert spec.product == ProductRef("example-compute", "example-compute", "example")
    assert (app.name, prod.name) == ("acme-web-application", "example-compute")


def test_parameters_are_rendered_and_checked() -> None:
    raw = spec_of(
        application={"name": "acme-batch", "version": "1.0.0"},
        parameters={"n": {"type": "integer", "value": 3}},
        timeAllocation=None,
    )
    spec, _, _ = catalog_job_spec(CATALOG, parse_specification(raw))
    assert (spec.command, spec.args, spec.time_limit_seconds) == ("acme-batch", ("3",), 0)
    raw["parameters"] = {"n": {"type": "text", "value": "3"}}
    with pytest.raises(InvalidArgument, match="parameter n is of type integer"):
        catalog_job_spec(CATALOG, parse_specification(raw))


def test_seed_000s_docker_job_is_refused_naming_the_backend() -> None:
    job = seed_provider_create()
    app = Application.model_validate(job["status"]["resolvedApplication"])
    prod = Product.model_validate(job["status"]["resolvedProduct"])
    with pytest.raises(InvalidArgument, match="tool backend DOCKER is not supported"):
        job_spec(parse_specification(job["specification"]), app, prod)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"replicas": 0}, "specification.replicas: must be >= 1"),
        ({"replicas": 10**6}, "specification.replicas: must be <= 256"),
        ({"replicas": 2}, "runs on one node only \\(allowMultiNode is false\\)"),
        ({"timeAllocation": {"hours": -1}}, "specification.timeAllocation.hours: must be >= 0"),
        ({"timeAllocation": {"hours": 9000, "minutes": 0, "seconds": 0}},
         "must be <= 8784"),
        ({"timeAllocation": {"hours": 8784, "minutes": 59}}, "timeAllocation exceeds the maximum"),
        ({"product": {"id": "big", "category": "example-compute", "provider": "example"}},
         "unknown product big in category example-compute"),
        ({"application": {"name": "nope", "version": "1"}}, "unknown application nope 1"),
        ({"application": None}, "specification.application: "),
        ({"sshEnabled": True}, "sshEnabled is not supported"),
        ({"restartOnExit": True}, "restartOnExit is not supported"),
        ({"resources": [{"type": "file", "path": "/x"}]}, "resources .* are not supported"),
        ({"parameters": {"x": {"type": "text", "value": "y"}}}, "unknown parameter\\(s\\) x"),
    ],
)  # fmt: skip
def test_bad_specifications_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        catalog_job_spec(CATALOG, parse_specification(spec_of(**changes)))


def test_the_applications_environment_is_the_jobs() -> None:
    raw = application([{"type": "word", "word": "run"}], [{"type": "text", "name": "t"}])
    raw["invocation"]["environment"] = {"T": {"type": "var", "variableNames": ["t"]}}
    app = Application.model_validate(raw)
    prod = Product.model_validate(product())
    specification = parse_specification(spec_of(parameters={"t": {"type": "text", "value": "a b"}}))
    spec = job_spec(specification, app, prod)
    assert dict(spec.environment) == {"T": "a b"}
