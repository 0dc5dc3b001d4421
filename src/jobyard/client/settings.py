"""Where the client connects and with which files: arguments, then environment, then defaults.

The environment is read when settings are resolved, never at import time. jobyard's own
names win over the seed's ``JOBLET_*`` names.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_SERVER = "localhost:50051"
DEFAULT_CERT = "certs/client-cert.pem"
DEFAULT_KEY = "certs/client-key.pem"
DEFAULT_CA = "certs/ca-cert.pem"

ENV_NAMES: dict[str, tuple[str, str]] = {
    "server": ("JOBYARD_SERVER", "JOBLET_SERVER"),
    "cert": ("JOBYARD_CERT_PATH", "JOBLET_CERT_PATH"),
    "key": ("JOBYARD_KEY_PATH", "JOBLET_KEY_PATH"),
    "ca": ("JOBYARD_CA_PATH", "JOBLET_CA_PATH"),
}
_DEFAULTS = {"server": DEFAULT_SERVER, "cert": DEFAULT_CERT, "key": DEFAULT_KEY, "ca": DEFAULT_CA}


@dataclasses.dataclass(frozen=True, slots=True)
class ClientSettings:
    server: str
    cert: Path
    key: Path
    ca: Path

    @classmethod
    def resolve(
        cls,
        server: str | None = None,
        cert: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
        ca: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> ClientSettings:
        """Fill every setting not given from the environment, then from the seed's defaults."""
        env = os.environ if environ is None else environ
        given = {"server": server, "cert": cert, "key": key, "ca": ca}
        values = {name: _pick(value, name, env) for name, value in given.items()}
        return cls(
            server=values["server"],
            cert=Path(values["cert"]),
            key=Path(values["key"]),
            ca=Path(values["ca"]),
        )


def _pick(value: str | os.PathLike[str] | None, name: str, env: Mapping[str, str]) -> str:
    if value is not None and str(value) != "":
        return os.fspath(value)
    for var in ENV_NAMES[name]:
        if env.get(var):
            return env[var]
    return _DEFAULTS[name]


def env_help(name: str) -> str:
    """A help fragment such as ``$JOBYARD_SERVER, $JOBLET_SERVER or localhost:50051``."""
    first, second = ENV_NAMES[name]
    return f"${first}, ${second} or {_DEFAULTS[name]}"
