"""Batches that could not be delivered: parked in S3 (bucket) and shipped again later (replay)."""
