"""The one batcher: items grouped so that each group's JSON array fits a request's byte limit, streamed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

BRACKETS = 2


def bounded_batches(
    items: Iterable[T], size: Callable[[T], int], max_bytes: int, separator_bytes: int
) -> Iterator[list[T]]:
    """Groups whose JSON array (brackets, items of `size` bytes, separators between) is at most `max_bytes`.

    An item too large for any request comes alone, over the limit: the sink must fail it (so it is spilled)
    rather than send it, and the items around it still go. Only one group is held in memory.
    """
    batch: list[T] = []
    total = BRACKETS
    for item in items:
        item_size = size(item)
        if batch and total + separator_bytes + item_size > max_bytes:
            yield batch
            batch, total = [], BRACKETS
        total += item_size + (separator_bytes if batch else 0)
        batch.append(item)
    if batch:
        yield batch


def array_size(sizes: Iterable[int], separator_bytes: int) -> int:
    """Bytes of a JSON array of items of these sizes."""
    sizes = list(sizes)
    return BRACKETS + sum(sizes) + separator_bytes * max(0, len(sizes) - 1)
