"""The external wire contract (CONTRACT.md), defined once and imported by edge and cloud.

Everything here is pure: no I/O beyond what a caller hands in.
"""
