"""Audit: export bundles, signed checkpoints, replicas."""
