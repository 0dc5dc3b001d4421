"""CoreClient: jobyard's calls to UCloud/Core's control API (``ucloud.core`` in the config).

Two calls, as seed 000 shows them: ``POST /api/jobs/control/update`` (a bulk of
``{id, update: JobUpdate}``) and ``POST /api/jobs/control/chargeCredits`` (a bulk of
``{id, chargeId, units, periods, performedBy, description}``, answered with
``{insufficientFunds, duplicateCharges}``). Authenticated with the provider's bearer token,
read from ``tokenFile`` once at start and never logged; TLS verified against ``caFile``
when given (else the system's CAs).
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from jobyard.domain.errors import InvalidArgument
from jobyard.ucloud.catalog import CoreConfig

Json = dict[str, Any]

UPDATE_PATH = "/api/jobs/control/update"
CHARGE_PATH = "/api/jobs/control/chargeCredits"
CORE_TIMEOUT_SECONDS = 10.0
MAX_TOKEN_BYTES = 64 * 1024
MAX_ITEMS_PER_CALL = 100  # UCloud's bulk requests stay small


class CoreUnavailable(Exception):
    """Core did not acknowledge a call (down, refused, timed out, answered an error)."""


def read_token(path: str) -> str:
    try:
        raw = Path(path).read_bytes()[: MAX_TOKEN_BYTES + 1]
    except OSError as exc:
        raise InvalidArgument(f"config: ucloud.core.tokenFile: cannot read {path}: "
                              f"{exc.strerror}") from None  # fmt: skip
    token = raw.decode("utf-8", "replace").strip()
    if not token or len(raw) > MAX_TOKEN_BYTES or any(c.isspace() for c in token):
        raise InvalidArgument(f"config: ucloud.core.tokenFile: {path} holds no single token")
    return token


class CoreClient:
    """An httpx.AsyncClient for Core, bound to the running event loop."""

    def __init__(self, config: CoreConfig, *, transport: httpx.AsyncBaseTransport | None = None):
        token = read_token(config.token_file)
        verify: ssl.SSLContext | bool = True
        if config.ca_file:
            try:
                verify = ssl.create_default_context(cafile=config.ca_file)
            except OSError as exc:
                raise InvalidArgument(f"config: ucloud.core.caFile: cannot read "
                                      f"{config.ca_file}: {exc.strerror}") from None  # fmt: skip
        self._client = httpx.AsyncClient(
            base_url=str(config.url).rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            verify=verify,
            timeout=CORE_TIMEOUT_SECONDS,
            transport=transport,
        )

    async def update(self, items: Sequence[Json]) -> None:
        """Send ``[{id, update}]``; returns once Core acknowledged them (2xx)."""
        await self._post(UPDATE_PATH, {"items": list(items)})

    async def charge_credits(self, items: Sequence[Json]) -> Json:
        """Send charges; Core's answer ``{insufficientFunds: [{id}], duplicateCharges: [{id}]}``."""
        answer = await self._post(CHARGE_PATH, {"items": list(items)})
        if not isinstance(answer, dict):
            raise CoreUnavailable("chargeCredits: Core's answer is not an object")
        return answer

    async def _post(self, path: str, body: Json) -> Any:
        try:
            response = await self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise CoreUnavailable(f"{path}: {type(exc).__name__}: {exc}") from None
        if not response.is_success:
            raise CoreUnavailable(f"{path}: Core answered {response.status_code}")
        if not response.content.strip():
            return {}
        try:
            return response.json()
        except ValueError:
            raise CoreUnavailable(f"{path}: Core's answer is not JSON") from None

    async def close(self) -> None:
        await self._client.aclose()


__all__ = ["CHARGE_PATH", "UPDATE_PATH", "CoreClient", "CoreUnavailable", "read_token"]
