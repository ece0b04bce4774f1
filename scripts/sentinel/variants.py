"""The Sentinel variants of workspace functions: queries/sentinel/<Name>.kql.

A variant replaces the function of queries/functions/ with the same name where Microsoft Sentinel is on: it may
call what only Sentinel defines (`_GetWatchlist`), which would break a plain Log Analytics workspace, so
azure/functions.json deploys the base function and azure/exceptions-watchlist.json and the Sentinel solution save
the variant under the same name. The files have the same header as the base functions (keyreport.queries) and
stay outside the package: the Lambda and the CLI never need them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from keyreport import queries
from keyreport.errors import LibraryError
from scripts import arm

FOLDER = arm.ROOT / "queries" / "sentinel"


@cache
def variants() -> dict[str, queries.Function]:
    """Every Sentinel variant by function name; each replaces a shipped function of that name."""
    shipped = queries.functions()
    found: dict[str, queries.Function] = {}
    for path in sorted(FOLDER.glob("*.kql")):
        function = queries.parse_function(path.read_text(encoding="utf-8"), path.name)
        if function.id not in shipped:
            raise LibraryError(f"{_relative(path)}: no queries/functions/{path.name} for this variant to replace")
        found[function.id] = function
    return found


def sentinel_functions() -> dict[str, queries.Function]:
    """The workspace functions as a workspace with Microsoft Sentinel has them: the shipped ones, in their order,
    each with a variant replaced by it."""
    return {**queries.functions(), **variants()}


def _relative(path: Path) -> str:
    return path.relative_to(arm.ROOT).as_posix()
