"""Payout rails behind one interface; every payout is idempotent by withdrawal id."""
from control_plane.rails.bank import SimulatedBankRail
from control_plane.rails.base import Payout, PayoutRail
from control_plane.rails.crypto import SimulatedCryptoRail

__all__ = ["Payout", "PayoutRail", "SimulatedBankRail", "SimulatedCryptoRail"]
