"""KYC vendor adapters. The cloud keeps decision + reference, never the document."""
from control_plane.kyc.vendor import KycVendor, SimulatedKycVendor, VendorDecision

__all__ = ["KycVendor", "SimulatedKycVendor", "VendorDecision"]
