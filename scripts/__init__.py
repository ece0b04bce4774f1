"""Build and release helpers (not part of the Lambda package)."""
