"""Edge side of the edge <-> cloud sync (wire: contract/sync.py; topology: docs/SYNC.md).

- `service.SyncService` (edge process): starts and supervises the publisher process, writes the
  acknowledged mark, applies commands, serves the sync metrics and health.
- `publisher_process`: the publisher in its own process: NATS connection, high-water mark,
  commands handed to the edge, heartbeats; `outbox.Outbox`: the journal to JetStream, exactly once.
- `channel`: the edge <-> publisher wire (a socket pair of JSON lines, a poke pipe).
- `residency.ResidencyFilter`: what of an entry may leave the jurisdiction.
- `reconcile.reconcile_from_cloud`: before start, re-import what the cloud holds beyond a restored journal.
- `nats_auth.server_config`: a nats-server config with one locked-down user per edge.
"""
