"""UCloud's model of compute: products (machine types with a price), applications (a tool
and how to invoke it) and the ``ucloud:`` config section that defines them."""

from jobyard.ucloud.applications import Application
from jobyard.ucloud.catalog import Catalog, CoreConfig, UcloudConfig, parse_ucloud_config
from jobyard.ucloud.invocation import check_backend, render
from jobyard.ucloud.jobs import JobSpecification, catalog_job_spec, job_spec, parse_specification
from jobyard.ucloud.products import Product

__all__ = [
    "Application",
    "Catalog",
    "CoreConfig",
    "JobSpecification",
    "Product",
    "UcloudConfig",
    "catalog_job_spec",
    "check_backend",
    "job_spec",
    "parse_specification",
    "parse_ucloud_config",
    "render",
]
