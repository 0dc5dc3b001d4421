"""Products and applications in the seed's shapes, shared by the UCloud unit tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"


def product(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "example-compute-1",
        "category": {"name": "example-compute", "provider": "example"},
        "cpu": 1,
        "memoryInGigs": 2,
        "gpu": 0,
        "pricePerUnit": 1000000,
        "unitOfPrice": "CREDITS_PER_MINUTE",
        "freeToUse": False,
        "description": "An example machine",
    }
    base.update(overrides)
    return base


def application(
    invocation: list[dict[str, Any]],
    parameters: list[dict[str, Any]],
    *,
    backend: str = "NATIVE",
    name: str = "acme-batch",
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "version": "1.0.0", "title": "Acme batch"},
        "invocation": {
            "tool": {
                "name": name,
                "version": "1.0.0",
                "tool": {
                    "description": {
                        "info": {"name": name, "version": "1.0.0"},
                        "backend": backend,
                    }
                },
            },
            "invocation": copy.deepcopy(invocation),
            "parameters": copy.deepcopy(parameters),
            "applicationType": "BATCH",
        },
    }


def seed_provider_create() -> dict[str, Any]:
    """The first Job of seed 000's ``POST /ucloud/{providerId}/jobs`` body (JSON form)."""
    text = (SEEDS / "000_bb1872a512ba850b.txt").read_text()
    anchor = text.index('"resolvedApplication": {')
    start = text.rindex("-d '", 0, anchor) + len("-d '")
    end = text.index("}'\n", start) + 1
    body: dict[str, Any] = json.loads(text[start:end])
    return dict(body["items"][0])


def seed_user_create() -> dict[str, Any]:
    """The item of seed 001's ``POST /api/jobs`` body (a JobSpecification)."""
    text = (SEEDS / "001_caddbb6e5bb4baee.txt").read_text()
    anchor = text.index('"$host/api/jobs" -d \'')
    start = anchor + len('"$host/api/jobs" -d \'')
    end = text.index("}'\n", start) + 1
    body: dict[str, Any] = json.loads(text[start:end])
    return dict(body["items"][0])
