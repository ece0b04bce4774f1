"""Which IAM user tags keyreport reads, and what they become on the user row: owner and exceptions (pure).

Only the owner tags KEYREPORT_OWNER_TAGS names and keyreport's own (`keyreport-*`, see keyreport.exceptions)
are kept from a tag read; no other tag is held in memory, logged or shipped. IAM tag keys are unique
case-insensitively, so names match case-insensitively; the row names an owner tag as the setting spells it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from keyreport.exceptions import ExceptionTag, as_json, is_exception_tag, mask_ids, parse

Tags = tuple[tuple[str, str], ...]  # (key, value) pairs, as IAM gives them (key spelled as set)
DEFAULT_OWNER_TAGS = ("owner", "team")
DEFAULT_MAX_EXCEPTION_DAYS = 365


@dataclass(frozen=True)
class TagRules:
    """KEYREPORT_OWNER_TAGS (in order: the first the user carries is its Owner) and KEYREPORT_MAX_EXCEPTION_DAYS."""

    owner_tags: tuple[str, ...] = DEFAULT_OWNER_TAGS
    max_exception_days: int = DEFAULT_MAX_EXCEPTION_DAYS

    def wanted(self, key: str) -> bool:
        folded = key.casefold()
        return any(folded == name.casefold() for name in self.owner_tags) or is_exception_tag(key)

    def keep(self, tags: Iterable[Mapping[str, Any]]) -> Tags:
        """The wanted tags of an IAM tag list ([{"Key": ..., "Value": ...}]); the others are dropped here."""
        return tuple((tag["Key"], tag["Value"]) for tag in tags if self.wanted(tag["Key"]))

    def owner_tags_of(self, tags: Tags) -> dict[str, str]:
        """The owner tags the user carries, named as the setting names them, in the setting's order."""
        by_key = {key.casefold(): value for key, value in tags}
        return {name: mask_ids(by_key[name.casefold()]) for name in self.owner_tags if name.casefold() in by_key}

    def exceptions_of(self, tags: Tags, today: date, keys: Collection[str] | None = None) -> list[ExceptionTag]:
        """Every keyreport tag of the user, parsed (sorted by key, so rows compare run to run)."""
        return [
            parse(key, value, today=today, max_days=self.max_exception_days, keys=keys)
            for key, value in sorted(tags, key=lambda tag: tag[0].casefold())
            if is_exception_tag(key) and not any(key.casefold() == name.casefold() for name in self.owner_tags)
        ]

    def row_fields(self, tags: Tags | None, today: date, keys: Collection[str] | None = None) -> dict[str, str]:
        """The user row's Owner, OwnerTags and Exceptions; `tags` None (not read) gives the empty ones."""
        owners = self.owner_tags_of(tags or ())
        return {
            "Owner": next((value for value in owners.values() if value), ""),
            "OwnerTags": json.dumps(owners, separators=(",", ":"), ensure_ascii=False),
            "Exceptions": as_json(self.exceptions_of(tags or (), today, keys)),
        }
