"""Simulated payout rails (port: control_plane/ports/payout_rail.py)."""
from control_plane.adapters.rails.bank import SimulatedBankRail
from control_plane.adapters.rails.crypto import SimulatedCryptoRail

__all__ = ["SimulatedBankRail", "SimulatedCryptoRail"]
