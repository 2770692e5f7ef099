"""Ports: what the services need from third parties (PSP, payout rails, KYC vendor), as Protocols.
The simulated implementations live in control_plane/adapters."""
