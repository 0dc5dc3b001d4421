"""The ``ucloud:`` config section: the seed's shapes accepted, errors naming the key path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobyard.config import load_config
from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import ProductRef
from jobyard.ucloud import Catalog, Product, UcloudConfig, parse_ucloud_config
from tests.unit.ucloud_samples import application, product, seed_provider_create

APP = application([{"type": "word", "word": "true"}], [])


def section(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"providerId": "example", "products": [product()], "applications": [APP]}
    raw.update(overrides)
    return raw


def refused(raw: Any) -> str:
    with pytest.raises(InvalidArgument) as info:
        parse_ucloud_config(raw)
    return str(info.value)


def test_the_config_file_section_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({"ucloud": section(accountingIntervalSeconds=5)}))
    config = load_config(path, data_dir=tmp_path)
    assert isinstance(config.ucloud, UcloudConfig)
    assert config.ucloud.provider_id == "example"
    assert config.ucloud.accounting_interval_seconds == 5
    assert [p.name for p in config.ucloud.products] == ["example-compute-1"]
    assert load_config(None, data_dir=tmp_path).ucloud is None


def test_defaults() -> None:
    config = parse_ucloud_config({"providerId": "p"})
    assert (config.products, config.applications, config.core) == ([], [], None)
    assert config.accounting_interval_seconds == 60


def test_the_seeds_resolved_product_and_application_are_accepted_as_config() -> None:
    job = seed_provider_create()
    raw = section(
        products=[job["status"]["resolvedProduct"]],
        applications=[job["status"]["resolvedApplication"]],
    )
    config = parse_ucloud_config(raw)
    # Shown back exactly as the seed writes them (keys, values, nulls).
    assert config.products[0].wire() == job["status"]["resolvedProduct"]
    assert config.applications[0].wire() == job["status"]["resolvedApplication"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (section(products=[product(), product(name="b", pricePerUnit=-1)]),
         "config: ucloud.products[1].pricePerUnit: must be >= 0"),
        (section(products=[product(cpu=0)]), "config: ucloud.products[0].cpu: must be >= 1"),
        (section(products=[product(unitOfPrice="CREDITS_PER_YEAR")]),
         "config: ucloud.products[0].unitOfPrice: must be one of"),
        (section(products=[product(cpuu=2)]), "config: unknown key ucloud.products[0].cpuu"),
        (section(products=[{"name": "x", "cpu": 1}]),
         "config: ucloud.products[0].category: is required"),
        (section(products=[product(gpu=1)]),
         "config: ucloud.products[0].gpu: must be 0: jobyard schedules no GPUs"),
        (section(products=[product(), product()]), "product example-compute-1 .* defined twice"),
        (section(products=[product(category={"name": "c", "provider": "other"})]),
         "products\\[0\\].category.provider: 'other' is not this provider"),
        ({"products": []}, "config: ucloud.providerId: is required"),
        (section(accountingIntervalSeconds=0),
         "config: ucloud.accountingIntervalSeconds: must be > 0"),
        (section(applications=[application([{"type": "var", "variableNames": ["nope"]}], [])]),
         "invocation\\[0\\] uses unknown parameter\\(s\\) nope"),
        (section(applications=[application([{"type": "word", "word": "x"}],
                                           [{"type": "peer", "name": "p"}])]),
         "config: ucloud.applications[0].invocation.parameters[0]: unknown type 'peer'"),
        (section(applications=[application([{"type": "word", "word": "x"}],
                                           [{"type": "integer", "name": "n", "mni": 1}])]),
         "config: unknown key ucloud.applications[0].invocation.parameters[0].mni"),
        (section(applications=[APP, APP]), "application acme-batch 1.0.0 is defined twice"),
        (section(core={"url": "not a url", "tokenFile": "t"}), "config: ucloud.core.url: "),
        ([1, 2], "config: section 'ucloud' must be a mapping"),
    ],
)  # fmt: skip
def test_errors_name_the_bad_keys_path(raw: Any, message: str) -> None:
    # Messages with regex syntax are patterns; the others are matched literally.
    assert re.search(message if "\\" in message or ".*" in message else re.escape(message),
                     refused(raw))  # fmt: skip


def test_a_product_bounds_its_jobs_and_knows_its_price() -> None:
    p = Product.model_validate(product(cpu=2, memoryInGigs=3, unitOfPrice="CREDITS_PER_HOUR"))
    res = p.resources()
    assert (res.max_cpu, res.max_memory, res.cpu_cores) == (200, 3072, "")
    pricing = p.pricing()
    assert (pricing.price_per_unit, pricing.unit_seconds, pricing.free) == (1000000, 3600, False)
    assert p.ref == ProductRef("example-compute-1", "example-compute", "example")


def test_catalog_lookups_name_what_is_offered() -> None:
    catalog = Catalog.of(parse_ucloud_config(section()))
    assert catalog.product("example-compute-1", "example-compute").cpu == 1
    assert catalog.application("acme-batch", "1.0.0").name == "acme-batch"
    with pytest.raises(InvalidArgument, match="unknown product big in category example-compute "
                       "\\(offered: example-compute-1 \\(example-compute\\)\\)"):  # fmt: skip
        catalog.product("big", "example-compute")
    with pytest.raises(InvalidArgument, match="of provider elsewhere"):
        catalog.product("example-compute-1", "example-compute", "elsewhere")
    with pytest.raises(InvalidArgument, match=r"unknown application acme-batch 2.0 \(offered: "):
        catalog.application("acme-batch", "2.0")
    ref = ProductRef("example-compute-1", "example-compute", "example")
    assert catalog.pricing(ref) is not None
    assert catalog.pricing(ProductRef("gone", "example-compute")) is None
    assert Catalog.of(None).products == []
