"""Edge side of the edge <-> cloud sync (wire: contract/sync.py; topology: docs/SYNC.md).

- `service.SyncService`: journal outbox to JetStream, commands in, heartbeats, high-water mark.
- `residency.ResidencyFilter`: what of an entry may leave the jurisdiction.
- `reconcile.reconcile_from_cloud`: before start, re-import what the cloud holds beyond a restored journal.
- `nats_auth.server_config`: a nats-server config with one locked-down user per edge.
"""
