"""Provider mode (``ucloud.core`` in the config): jobyard as a UCloud provider.

Assembles what the provider face needs beside the engine: Core's ids and the outbox (in the
server's database), the client of Core's control API, the ledger that charges Core for the
jobs Core created (the local wallets keep charging every other job), and the relay that
reports every change of those jobs to Core.
"""

from __future__ import annotations

import dataclasses

from jobyard.accounting.core import CoreLedger
from jobyard.accounting.ledger import Ledger
from jobyard.config import ServerConfig
from jobyard.domain.jobs import RANK_JOB_ID_LABEL, JobSpec
from jobyard.engine import JobEngine
from jobyard.engine.accounting import Accounting
from jobyard.http.provider.face import ProviderFace
from jobyard.http.provider.relay import CoreRelay
from jobyard.store import SQLiteStore
from jobyard.store.provider import SQLiteProviderStore
from jobyard.store.tokens import SQLiteTokens
from jobyard.store.ucloud_specs import SQLiteUcloudSpecs
from jobyard.ucloud.catalog import CoreConfig, UcloudConfig
from jobyard.ucloud.core import CoreClient


class Provider:
    def __init__(self, config: UcloudConfig, core: CoreConfig, store: SQLiteStore) -> None:
        self.config = config
        self.store = SQLiteProviderStore(store.connection)
        self.client = CoreClient(core)
        self.ledger = CoreLedger(self.client, self.store)
        self._relay: CoreRelay | None = None

    def accounting(self, base: Accounting) -> Accounting:
        """``base`` with Core's ledger for the jobs Core created, charged every
        ``accountingIntervalSeconds`` (each time for every unit started since)."""
        return dataclasses.replace(
            base,
            interval_seconds=self.config.accounting_interval_seconds,
            ledger_for=self.ledger_for,
        )

    def ledger_for(self, spec: JobSpec) -> Ledger | None:
        # A job that merely carries the label is charged to Core too, which refuses it
        # (CoreLedger knows only the jobs Core created), so a label is no way to run free.
        return self.ledger if RANK_JOB_ID_LABEL in spec.labels else None

    async def start(self, engine: JobEngine) -> None:
        self._relay = CoreRelay(engine, self.store, self.client)
        await self._relay.start()

    @property
    def relay(self) -> CoreRelay:
        assert self._relay is not None, "the provider was not started"
        return self._relay

    def face(self, tokens: SQLiteTokens, specs: SQLiteUcloudSpecs) -> ProviderFace:
        return ProviderFace(
            engine=self.relay.engine, tokens=tokens, store=self.store, relay=self.relay,
            config=self.config, specs=specs,
        )  # fmt: skip


def make_provider(config: ServerConfig, store: SQLiteStore) -> Provider | None:
    """The provider parts when the config names Core (``ucloud.core``), else None."""
    ucloud = config.ucloud
    if ucloud is None or ucloud.core is None:
        return None
    return Provider(ucloud, ucloud.core, store)


__all__ = ["Provider", "make_provider"]
