"""The player web client (static ES modules served by the edge at /play)."""
