"""Round video evidence: every round of a fed table kept as an MP4 clip whose hash is journaled."""
