"""Media path of the edge: SRT ingest, decode once, ABR ladder encode, WHEP fan-out."""
