"""The shipped KQL library (catalogue), the workspace query client (client) and result formatting (output).

`keyreport.queries` itself is the catalogue's API; importing it loads no Azure SDK.
"""

from keyreport.errors import LibraryError, UnknownQuery
from keyreport.queries.catalogue import (
    LOCAL_ENGINE,
    REQUIRED_KEYS,
    VISUALIZATIONS,
    Query,
    find,
    format_duration,
    library,
    library_folder,
    parse,
    parse_duration,
)

__all__ = [
    "LOCAL_ENGINE",
    "REQUIRED_KEYS",
    "VISUALIZATIONS",
    "LibraryError",
    "Query",
    "UnknownQuery",
    "find",
    "format_duration",
    "library",
    "library_folder",
    "parse",
    "parse_duration",
]
