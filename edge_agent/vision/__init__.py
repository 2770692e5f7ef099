"""Computer vision on the studio feed: what the camera shows the dealer revealed, read at the edge
and compared with what the RNG dealt (the journaled outcome)."""
