"""Third-party internals used by the media path: one module per library, each checked at import."""
