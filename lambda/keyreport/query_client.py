"""`keyreport queries` and `keyreport query NAME`: the shipped KQL library, run against the workspace.

Queries go through azure-monitor-query's LogsQueryClient to the cloud's Log Analytics query endpoint
(KEYREPORT_AZURE_CLOUD; KEYREPORT_LOGS_QUERY_ENDPOINT overrides the host, e.g. for private link), with a
token for the cloud's query audience. Sign-in: the configured KEYREPORT_AZURE_AUTH mode (`default` is
DefaultAzureCredential: Azure CLI, environment, managed identity...), or a person with `--auth
device-code` / `--auth browser`. A partial result is printed and reported as partial (exit 3), never
passed off as complete.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
from azure.monitor.query import LogsQueryClient, LogsQueryError, LogsQueryPartialResult, LogsTable

from keyreport import pipeline, queries
from keyreport.aws_clients import AwsClients
from keyreport.azure_auth import INTERACTIVE_MODES, build_credential, interactive_credential
from keyreport.query_output import FORMATS, Table, as_csv, as_json, as_table
from keyreport.settings import Settings
from keyreport.tls import trust_bundle

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
SERVER_TIMEOUT_SECONDS = 180  # the service's default; at most 600


@dataclass(frozen=True)
class Outcome:
    tables: list[Table]
    partial_error: LogsQueryError | None = None


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listing = commands.add_parser("queries", help="list the shipped KQL queries (ids for `keyreport query`)")
    listing.add_argument("--show", metavar="NAME", help="print one query's KQL instead of the list")
    listing.set_defaults(handler=list_queries)

    query = commands.add_parser(
        "query",
        help="run a shipped KQL query against the Log Analytics workspace (KEYREPORT_WORKSPACE_ID)",
        description="Runs one query of the shipped library with azure-monitor-query against the workspace.",
    )
    query.add_argument("name", help="query id (see `keyreport queries`)")
    query.add_argument("--timespan", help="time range ending now, ISO 8601 duration (P7D, PT12H); default: the query's")
    query.add_argument("-o", "--output", choices=FORMATS, default="table", help="table (default), csv or json")
    query.add_argument("--server-timeout", type=int, default=SERVER_TIMEOUT_SECONDS, help="seconds, at most 600")
    auth = query.add_argument_group("signing in as a person instead of KEYREPORT_AZURE_AUTH")
    auth.add_argument("--auth", choices=INTERACTIVE_MODES, help="device-code (any terminal) or browser (this machine)")
    auth.add_argument("--tenant", help="tenant to sign in to (default AZURE_TENANT_ID, else organizations)")
    auth.add_argument("--client-id", help="public client app to sign in through (default: azure-identity's)")
    query.set_defaults(handler=run_query)


def list_queries(args: argparse.Namespace) -> int:
    library = queries.library()
    if args.show:
        try:
            print(queries.find(args.show).text, end="")
        except queries.UnknownQuery as error:
            print(f"keyreport queries: {error}", file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK
    width = max(len(query_id) for query_id in library)
    for query in library.values():
        print(f"{query.id:<{width}}  {query.title}  [{query.visualization}, default {_span(query.timespan)}]")
    return EXIT_OK


def run_query(args: argparse.Namespace) -> int:
    request = _request(args)
    if isinstance(request, str):
        print(f"keyreport query: {request}", file=sys.stderr)
        return EXIT_USAGE
    query, timespan = request
    # A person signing in needs none of the configured mode's inputs (secret ARNs, KMS key).
    settings = Settings.for_query(None, **({"KEYREPORT_AZURE_AUTH": "default"} if args.auth else {}))
    assert settings.workspace_id is not None  # for_query requires it
    client = logs_client(settings, _credential(args, settings))
    try:
        outcome = execute(client, settings.workspace_id, query.text, timespan, args.server_timeout)
    except HttpResponseError as error:
        print(f"keyreport query {query.id}: {describe(error)}", file=sys.stderr)
        return EXIT_FAILED
    except (ClientAuthenticationError, ServiceRequestError) as error:
        print(f"keyreport query {query.id}: {_first_line(error)}", file=sys.stderr)
        return EXIT_FAILED
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
    except queries.UnknownQuery as error:
        return str(error)
    if not 1 <= args.server_timeout <= 600:
        return f"--server-timeout {args.server_timeout} is not between 1 and 600 seconds"
    try:
        return query, query.timespan if args.timespan is None else queries.parse_duration(args.timespan)
    except ValueError as error:
        return f"--timespan {error}"


def logs_client(settings: Settings, credential: TokenCredential) -> LogsQueryClient:
    """The client for the cloud's query API; the token audience stays the cloud's even when the host is overridden."""
    return LogsQueryClient(
        credential,
        endpoint=settings.logs_query_endpoint,
        audience=settings.azure_cloud.logs_query_endpoint,
        connection_verify=trust_bundle(settings.ca_bundle),
    )


def execute(client: LogsQueryClient, workspace_id: str, text: str, timespan: timedelta, server_timeout: int) -> Outcome:
    response = client.query_workspace(workspace_id, text, timespan=timespan, server_timeout=server_timeout)
    if isinstance(response, LogsQueryPartialResult):
        return Outcome([_table(t) for t in response.partial_data or []], response.partial_error)
    return Outcome([_table(t) for t in response.tables])


def describe(error: HttpResponseError) -> str:
    """`status code: message` with the service's innermost message (what went wrong in the query)."""
    model = error.model
    if isinstance(model, LogsQueryError) and model.message:
        return f"{error.status_code} {model.code}: {model.message}"
    found = _service_error(error)
    if found is not None:
        return f"{error.status_code} {found[0]}: {found[1]}"
    return f"{error.status_code}: {_first_line(error)}"


def _service_error(error: HttpResponseError) -> tuple[str, str] | None:
    """(code, innermost message) from the body `{"error": {"code", "message", "innererror": ...}}`, if any."""
    try:
        body = json.loads(error.response.text()) if error.response is not None else None
    except ValueError:
        return None
    top = body.get("error") if isinstance(body, dict) else None
    if not isinstance(top, dict) or not top.get("code"):
        return None
    inner = top
    while isinstance(inner.get("innererror"), dict):
        inner = inner["innererror"]
    return str(top["code"]), str(inner.get("message") or top.get("message", ""))


def describe_partial(error: LogsQueryError) -> str:
    details = [str(detail["message"]) for detail in _details(error) if detail.get("message")]
    return "; ".join([f"{error.code}: {error.message}", *details])


def _details(error: LogsQueryError) -> list[dict[str, Any]]:
    """The error's details as plain dicts (the SDK gives its own mapping models)."""
    return [dict(detail) for detail in error.details or [] if isinstance(detail, Mapping)]


def _credential(args: argparse.Namespace, settings: Settings) -> TokenCredential:
    if args.auth:
        return interactive_credential(
            settings, args.auth, tenant_id=args.tenant, client_id=args.client_id, prompt=_show_device_code
        )
    session = boto3.Session()  # only the secret, certificate, kms and federated modes reach AWS
    return build_credential(settings, AwsClients(session, pipeline.aws_config(settings)))


def _show_device_code(verification_uri: str, user_code: str, expires_on: datetime) -> None:
    # stderr: stdout carries the result (perhaps JSON or CSV).
    print(
        f"To sign in, open {verification_uri} and enter the code {user_code} (valid until {expires_on:%H:%M} UTC).",
        file=sys.stderr,
        flush=True,
    )


def _table(table: LogsTable) -> Table:
    return Table(table.name, tuple(table.columns), tuple(table.columns_types), tuple(tuple(row) for row in table.rows))


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
            header["error"] = {"code": error.code, "message": error.message, "details": _details(error)}
        sys.stdout.write(as_json(outcome.tables, header))
    elif output == "csv":
        sys.stdout.write(as_csv(outcome.tables))
    else:
        sys.stdout.write(as_table(outcome.tables))


def _span(duration: timedelta) -> str:
    return queries.format_duration(duration)


def _first_line(error: Exception) -> str:
    message = str(getattr(error, "message", None) or error).strip()
    return message.splitlines()[0] if message else type(error).__name__
