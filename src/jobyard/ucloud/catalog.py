"""The ``ucloud:`` config section and the catalog of products and applications it defines.

Example (the seed's own JSON shapes, written as YAML)::

    ucloud:
      providerId: example
      accountingIntervalSeconds: 60
      products:
        - name: example-compute-1
          category: {name: example-compute, provider: example}
          cpu: 1
          memoryInGigs: 2
          pricePerUnit: 1000000
          unitOfPrice: CREDITS_PER_MINUTE
          freeToUse: false
          description: An example machine
      applications:
        - metadata: {name: acme-batch, version: 1.0.0, title: Acme batch}
          invocation:
            tool:
              name: acme-batch
              version: 1.0.0
              tool:
                description:
                  info: {name: acme-batch, version: 1.0.0}
                  backend: NATIVE
            invocation:
              - {type: word, word: acme-batch}
              - {type: var, variableNames: [value]}
            parameters:
              - {type: text, name: value, optional: false}
      core: {url: "https://core.example", tokenFile: /etc/jobyard/core-token, caFile: ca.pem}

Validated at start; an error names the bad key's path
(``config: ucloud.products[2].pricePerUnit: must be >= 0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import pydantic

from jobyard.accounting.ledger import Pricing
from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import ProductRef
from jobyard.ucloud.applications import Application
from jobyard.ucloud.models import UcloudModel, invalid, unknown_keys
from jobyard.ucloud.products import Product

DEFAULT_ACCOUNTING_INTERVAL_SECONDS = 60.0
MAX_PRODUCTS = 1024
MAX_APPLICATIONS = 4096
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


class CoreConfig(UcloudModel):
    """Where UCloud/Core's control API is (provider mode)."""

    url: pydantic.HttpUrl
    token_file: str = pydantic.Field(min_length=1)
    ca_file: str | None = None


class Maintenance(UcloudModel):
    """A maintenance period, as ``retrieveProducts`` reports it."""

    description: str = ""
    availability: Literal["MINOR_DISRUPTION", "MAJOR_DISRUPTION", "NO_SERVICE"]
    starts_at: int = pydantic.Field(ge=0)  # epoch milliseconds
    estimated_end_at: int | None = pydantic.Field(default=None, ge=0)


class UcloudConfig(UcloudModel):
    """The ``ucloud:`` section."""

    provider_id: str = pydantic.Field(pattern=_NAME)
    products: list[Product] = pydantic.Field(default=[], max_length=MAX_PRODUCTS)
    applications: list[Application] = pydantic.Field(default=[], max_length=MAX_APPLICATIONS)
    accounting_interval_seconds: float = pydantic.Field(
        default=DEFAULT_ACCOUNTING_INTERVAL_SECONDS, gt=0, le=86400
    )
    core: CoreConfig | None = None
    maintenance: Maintenance | None = None

    @pydantic.model_validator(mode="after")
    def _unique_and_own(self) -> UcloudConfig:
        seen: set[tuple[str, str]] = set()
        for i, product in enumerate(self.products):
            key = (product.name, product.category.name)
            if key in seen:
                raise ValueError(f"products[{i}]: product {product.ref} is defined twice")
            seen.add(key)
            if product.category.provider != self.provider_id:
                raise ValueError(
                    f"products[{i}].category.provider: {product.category.provider!r} is not "
                    f"this provider ({self.provider_id!r})"
                )
        apps: set[tuple[str, str]] = set()
        for i, app in enumerate(self.applications):
            if (app.name, app.version) in apps:
                raise ValueError(
                    f"applications[{i}]: application {app.name} {app.version} is defined twice"
                )
            apps.add((app.name, app.version))
        return self


def parse_ucloud_config(raw: Any, prefix: str = "ucloud") -> UcloudConfig:
    """The ``ucloud:`` section, validated: errors name the key path, unknown keys refused."""
    if not isinstance(raw, dict):
        raise InvalidArgument(f"config: section {prefix!r} must be a mapping")
    try:
        config = UcloudConfig.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise invalid(exc, raw, prefix) from None
    for path in unknown_keys(config, prefix):
        raise InvalidArgument(f"config: unknown key {path}")
    return config


class Catalog:
    """The products and applications a server offers, looked up by their UCloud names."""

    def __init__(self, products: Sequence[Product] = (), applications: Sequence[Application] = ()):
        self._products = {(p.name, p.category.name): p for p in products}
        self._applications = {(a.name, a.version): a for a in applications}

    @classmethod
    def of(cls, config: UcloudConfig | None) -> Catalog:
        if config is None:
            return cls()
        return cls(config.products, config.applications)

    @property
    def products(self) -> list[Product]:
        return list(self._products.values())

    @property
    def applications(self) -> list[Application]:
        return list(self._applications.values())

    def product(self, name: str, category: str, provider: str = "") -> Product:
        """The product ``name`` of ``category``; InvalidArgument names what is offered."""
        found = self._products.get((name, category))
        if found is None or (provider and found.category.provider != provider):
            known = ", ".join(str(p.ref) for p in self._products.values()) or "none"
            where = f" of provider {provider}" if provider else ""
            raise InvalidArgument(
                f"unknown product {name} in category {category}{where} (offered: {known})"
            )
        return found

    def application(self, name: str, version: str) -> Application:
        found = self._applications.get((name, version))
        if found is None:
            known = ", ".join(f"{n} {v}" for n, v in self._applications) or "none"
            raise InvalidArgument(f"unknown application {name} {version} (offered: {known})")
        return found

    def pricing(self, ref: ProductRef) -> Pricing | None:
        """The price of a job's product (None: no longer offered, so not charged).

        TODO: keep the price on the job when it is created (as UCloud keeps its
        resolvedProduct), so that a product removed from or repriced in the config while
        jobs run on it goes on charging them at the price they started with.
        """
        found = self._products.get((ref.id, ref.category))
        return None if found is None else found.pricing()


__all__ = [
    "Application",
    "Catalog",
    "CoreConfig",
    "Maintenance",
    "Product",
    "UcloudConfig",
    "parse_ucloud_config",
]
