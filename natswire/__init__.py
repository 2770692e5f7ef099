"""NATS wire shortcuts for the sync hot paths, shared by the edge and the control plane."""
from natswire.client import LeanClient, RawHandler, ack_commands, header_block, header_status, hpub

__all__ = ["LeanClient", "RawHandler", "ack_commands", "header_block", "header_status", "hpub"]
