"""The HTTP adapter: FastAPI routes over the services (no SQL here), tokens, the error envelope."""
