"""The UCloud provider face (seed 000): what UCloud/Core calls on jobyard, and jobyard's
calls back to Core (job updates from a durable outbox, charges)."""
