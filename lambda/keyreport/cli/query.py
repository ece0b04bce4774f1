"""`keyreport queries` and `keyreport query NAME`: the shipped KQL library, run against the workspace.

Sign-in: the configured KEYREPORT_AZURE_AUTH mode (`default` is DefaultAzureCredential: Azure CLI,
environment, managed identity...), or a person with `--auth device-code` / `--auth browser`. A partial
result is printed and reported as partial (exit 3).
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

from keyreport import queries
from keyreport.cli import causes, sign_in
from keyreport.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_RUN_FAILED,
    QUERY_VARIABLES,
    aws_session,
    help_for,
    quiet_unless,
)
from keyreport.errors import UnknownQuery, first_line
from keyreport.queries.client import (
    SERVER_TIMEOUT_SECONDS,
    Outcome,
    describe,
    describe_partial,
    details,
    execute,
    function_hint,
    logs_client,
)
from keyreport.queries.output import FORMATS, as_csv, as_json, as_table
from keyreport.settings import Settings
from keyreport.wiring import query_credential

if TYPE_CHECKING:
    from keyreport.cli.common import Commands


def add_to(commands: Commands) -> None:
    listing = commands.add_parser(
        "queries",
        help="list the shipped KQL queries (ids for `keyreport query`)",
        **help_for("Lists the shipped KQL library: each query's id and what it answers.", "0 listed, 2 usage"),
    )
    listing.add_argument(
        "--show", metavar="NAME", help="print one query's KQL, or a workspace function's body, instead of the list"
    )
    listing.set_defaults(handler=list_queries)

    query = commands.add_parser(
        "query",
        help="run a shipped KQL query against the Log Analytics workspace (KEYREPORT_WORKSPACE_ID)",
        **help_for(
            "Runs one query of the shipped library with azure-monitor-query against the workspace; needs Log "
            "Analytics Reader on it.",
            "0 ok, 1 refused, 2 usage or configuration, 3 partial result (printed, and reported as partial), "
            "130 interrupted",
            QUERY_VARIABLES,
        ),
    )
    query.add_argument("name", help="query id (see `keyreport queries`)")
    query.add_argument("--timespan", help="time range ending now, ISO 8601 duration (P7D, PT12H); default: the query's")
    query.add_argument("-o", "--output", choices=FORMATS, default="table", help="table (default), csv or json")
    query.add_argument("--server-timeout", type=int, default=SERVER_TIMEOUT_SECONDS, help="seconds, at most 600")
    sign_in.add_sign_in_options(query)
    query.set_defaults(handler=run_query)


def list_queries(args: argparse.Namespace) -> int:
    library = queries.library()
    if args.show:
        function = queries.functions().get(args.show)
        if function is not None:
            print(function.text, end="")
            return EXIT_OK
        try:
            print(queries.find(args.show).text, end="")
        except UnknownQuery as error:
            print(f"keyreport queries: {error}", file=sys.stderr)
            return EXIT_CONFIG
        return EXIT_OK
    width = max(len(query_id) for query_id in library)
    for query in library.values():
        print(f"{query.id:<{width}}  {query.title}  [{query.visualization}, default {_span(query.timespan)}]")
    return EXIT_OK


def run_query(args: argparse.Namespace) -> int:
    request = _request(args)
    if isinstance(request, str):
        print(f"keyreport query: {request}", file=sys.stderr)
        return EXIT_CONFIG
    query, timespan = request
    quiet_unless(verbose=False)  # azure-identity's warnings would bury the one line that matters
    settings = Settings.for_query(None, **sign_in.settings_overrides(args))
    credential = sign_in.person_credential(args, settings.azure) or query_credential(settings, aws_session())
    client = logs_client(settings, credential)
    try:
        outcome = execute(client, settings.workspace_id, query.text, timespan, args.server_timeout)
    except HttpResponseError as error:
        message = describe(error)
        print(f"keyreport query {query.id}: {message}{function_hint(message)}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except (ClientAuthenticationError, ServiceRequestError) as error:
        print(f"keyreport query {query.id}: {first_line(error)}", file=sys.stderr)
        cause, fix = causes.cause_and_fix([first_line(error, 1000)])
        print(f"cause: {cause}\nfix:   {fix}", file=sys.stderr)
        return EXIT_RUN_FAILED
    finally:
        client.close()
    _print(outcome, args.output, query, timespan, settings.workspace_id)
    if outcome.partial_error is not None:
        print(f"keyreport query {query.id}: PARTIAL RESULT: {describe_partial(outcome.partial_error)}", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _request(args: argparse.Namespace) -> tuple[queries.Query, timedelta] | str:
    """The query and time range asked for, or what is wrong with the command line."""
    try:
        query = queries.find(args.name)
    except UnknownQuery as error:
        return str(error)
    if not 1 <= args.server_timeout <= 600:
        return f"--server-timeout {args.server_timeout} is not between 1 and 600 seconds"
    try:
        return query, query.timespan if args.timespan is None else queries.parse_duration(args.timespan)
    except ValueError as error:
        return f"--timespan {error}"


def _print(outcome: Outcome, output: str, query: queries.Query, timespan: timedelta, workspace_id: str) -> None:
    if output == "json":
        header: dict[str, Any] = {
            "query": query.id,
            "workspace": workspace_id,
            "timespan": _span(timespan),
            "status": "PartialError" if outcome.partial_error else "Success",
        }
        if outcome.partial_error is not None:
            error = outcome.partial_error
            header["error"] = {"code": error.code, "message": error.message, "details": details(error)}
        sys.stdout.write(as_json(outcome.tables, header))
    elif output == "csv":
        sys.stdout.write(as_csv(outcome.tables))
    else:
        sys.stdout.write(as_table(outcome.tables))


def _span(duration: timedelta) -> str:
    return queries.format_duration(duration)
