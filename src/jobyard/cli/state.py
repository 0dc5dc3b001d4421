"""What the global options leave for the commands: how to open the one client."""

from __future__ import annotations

import dataclasses

import click

from jobyard.client import Client

# Exit status for a command interrupted with Ctrl+C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


@dataclasses.dataclass
class CliState:
    """The global options; :meth:`client` opens a client with them for the running command."""

    server: str | None = None
    cert: str | None = None
    key: str | None = None
    ca: str | None = None
    insecure: bool = False

    def client(self) -> Client:
        client = Client(self.server, self.cert, self.key, self.ca, insecure=self.insecure)
        click.get_current_context().call_on_close(client.close)
        return client


pass_state = click.make_pass_decorator(CliState)
