"""Adapters: database, NATS (bus, pull consumer), the command outbox, keys, and the simulated third parties (KYC vendor, PSP, payout rails) behind the ports."""
