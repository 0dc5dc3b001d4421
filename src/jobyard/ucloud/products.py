"""Product.Compute: a machine type with a price, in the seed's ``resolvedProduct`` shape.

A product bounds the jobs that run on it: ``cpu`` cores become ``maxCPU = cpu * 100`` (the
job's share of the host; its ranks see ``cpu`` cores in ``/etc/ucloud/cores.txt``) and
``memoryInGigs`` becomes ``maxMemory`` in MB. It does not pin the job to particular CPUs:
jobs of one product would otherwise all pile onto the same ones.
"""

from __future__ import annotations

from typing import Literal

import pydantic

from jobyard.accounting.ledger import UNIT_SECONDS, Pricing
from jobyard.domain.jobs import MAX_MEMORY_MB_BOUND, ProductRef, Resources
from jobyard.ucloud.models import UcloudModel

PriceUnit = Literal["CREDITS_PER_MINUTE", "CREDITS_PER_HOUR", "CREDITS_PER_DAY"]
MAX_PRODUCT_CPU = 4096
MAX_PRODUCT_MEMORY_GIGS = MAX_MEMORY_MB_BOUND // 1024
MAX_PRICE_PER_UNIT = 10**12
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
_UNIT_NAMES = {"CREDITS_PER_MINUTE": "minute", "CREDITS_PER_HOUR": "hour", "CREDITS_PER_DAY": "day"}


class ProductCategory(UcloudModel):
    """``ProductCategoryId`` as the seed's JSON writes it: ``{name, provider}``."""

    name: str = pydantic.Field(pattern=_NAME)
    provider: str = pydantic.Field(pattern=_NAME)


class Product(UcloudModel):
    """Product.Compute, every key of the seed's ``resolvedProduct``."""

    name: str = pydantic.Field(pattern=_NAME)
    category: ProductCategory
    cpu: int = pydantic.Field(ge=1, le=MAX_PRODUCT_CPU)
    memory_in_gigs: int = pydantic.Field(ge=1, le=MAX_PRODUCT_MEMORY_GIGS)
    gpu: int = 0
    price_per_unit: int = pydantic.Field(ge=0, le=MAX_PRICE_PER_UNIT)
    unit_of_price: PriceUnit = "CREDITS_PER_MINUTE"
    free_to_use: bool = False
    description: str = pydantic.Field(default="", max_length=4096)
    # Shown as the seed shows them; jobyard does not act on them.
    priority: int = 0
    version: int = 1
    cpu_model: str | None = None
    memory_model: str | None = None
    gpu_model: str | None = None
    charge_type: Literal["ABSOLUTE", "DIFFERENTIAL_QUOTA"] = "ABSOLUTE"
    hidden_in_grant_applications: bool = False
    product_type: Literal["COMPUTE"] = "COMPUTE"
    balance: int | None = None

    @pydantic.field_validator("gpu")
    @classmethod
    def _no_gpus(cls, gpu: int) -> int:
        if gpu != 0:
            raise ValueError("must be 0: jobyard schedules no GPUs")
        return gpu

    @property
    def ref(self) -> ProductRef:
        return ProductRef(self.name, self.category.name, self.category.provider)

    def resources(self, base: Resources | None = None) -> Resources:
        """The limits of a job on this product (other limits from ``base``)."""
        base = base or Resources()
        return Resources(
            max_cpu=self.cpu * 100,
            cpu_cores="",
            max_memory=self.memory_in_gigs * 1024,
            max_iobps=base.max_iobps,
            max_pids=base.max_pids,
            max_disk=base.max_disk,
        )

    def pricing(self) -> Pricing:
        return Pricing(
            product=str(self.ref),
            price_per_unit=self.price_per_unit,
            unit_seconds=UNIT_SECONDS[self.unit_of_price],
            free=self.free_to_use,
            unit_name=_UNIT_NAMES[self.unit_of_price],
        )


__all__ = ["PriceUnit", "Product", "ProductCategory"]
