"""Build and release helpers, and the renderers of the generated files (not part of the Lambda package)."""
