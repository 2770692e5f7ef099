"""A refusal of a regulator query (status, stable code, message): answered as JSON or as a page by
the regulator router, raised by any handler it serves (its own and evidence/ clips)."""
from __future__ import annotations


class RegError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
