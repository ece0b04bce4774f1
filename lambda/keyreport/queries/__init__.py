"""The shipped KQL library (catalogue), the workspace query client (client) and result formatting (output).

`keyreport.queries` itself is the catalogue's API; importing it loads no Azure SDK.
"""

from keyreport.errors import LibraryError, UnknownQuery
from keyreport.queries.catalogue import (
    LOCAL_ENGINE,
    REQUIRED_KEYS,
    SEVERITIES,
    VISUALIZATIONS,
    Function,
    Query,
    calls,
    external_tables,
    find,
    format_duration,
    functions,
    library,
    library_folder,
    parse,
    parse_duration,
    parse_function,
)

__all__ = [
    "LOCAL_ENGINE",
    "REQUIRED_KEYS",
    "SEVERITIES",
    "VISUALIZATIONS",
    "Function",
    "LibraryError",
    "Query",
    "UnknownQuery",
    "calls",
    "external_tables",
    "find",
    "format_duration",
    "functions",
    "library",
    "library_folder",
    "parse",
    "parse_duration",
    "parse_function",
]
