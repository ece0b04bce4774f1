"""Record field -> Log Analytics column, for the sink that must name the columns itself (Logs Ingestion).

A copy of queries/schema.json (the single declaration of the tables), kept as Python so the Lambda zip
needs no data file and a cold start reads nothing from disk. tests/unit/test_columns.py fails, printing
the literal to paste here, whenever this drifts from schema.json.
"""

from __future__ import annotations

from collections.abc import Mapping

from keyreport.records import Row

TIME_GENERATED = "TimeGenerated"
TIME_GENERATED_FIELD = "loggedDate"  # the Data Collector sink names it in the time-generated-field header

KEYS_TABLE = "AWS_Access_Key_Report_CL"
RUNS_TABLE = "AWS_Access_Key_Report_Run_CL"
USERS_TABLE = "AWS_Access_Key_Report_Users_CL"

KEY_COLUMNS: Mapping[str, str] = {
    "loggedDate": "loggedDate_t",
    "account_number": "account_number_s",
    "user": "user_s",
    "UserArn": "UserArn_s",
    "AccessKeyId": "AccessKeyId_s",
    "KeyFingerprint": "KeyFingerprint_s",
    "Status": "Status_s",
    "CreateDate": "CreateDate_t",
    "KeyAgeDays": "KeyAgeDays_d",
    "LastUsedDate": "LastUsedDate_t",
    "ServiceName": "ServiceName_s",
    "Region": "Region_s",
    "DaysSinceLastUse": "DaysSinceLastUse_d",
    "NeverUsed": "NeverUsed_b",
    "PasswordEnabled": "PasswordEnabled_b",
    "MfaActive": "MfaActive_b",
    "RunId": "RunId_g",
}

RUN_COLUMNS: Mapping[str, str] = {
    "loggedDate": "loggedDate_t",
    "account_number": "account_number_s",
    "RunId": "RunId_g",
    "Status": "Status_s",
    "Sink": "Sink_s",
    "Users": "Users_d",
    "Keys": "Keys_d",
    "UsersSkipped": "UsersSkipped_d",
    "UsersNotRead": "UsersNotRead_d",
    "RecordsShipped": "RecordsShipped_d",
    "RecordsSpilled": "RecordsSpilled_d",
    "RecordsFailed": "RecordsFailed_d",
    "Errors": "Errors_d",
    "ErrorDetail": "ErrorDetail_s",
    "DurationSeconds": "DurationSeconds_d",
    "CollectorVersion": "CollectorVersion_s",
    "Scope": "Scope_s",
    "ScopeUser": "ScopeUser_s",
    "UserDeleted": "UserDeleted_b",
    "InventoryComplete": "InventoryComplete_b",
    "KeyRows": "KeyRows_d",
    "UserRows": "UserRows_d",
    "PasswordPolicy": "PasswordPolicy_b",
    "MinPasswordLength": "MinPasswordLength_d",
    "PasswordReusePrevention": "PasswordReusePrevention_d",
    "RequireSymbols": "RequireSymbols_b",
    "RequireNumbers": "RequireNumbers_b",
    "RequireUppercase": "RequireUppercase_b",
    "RequireLowercase": "RequireLowercase_b",
    "MaxPasswordAge": "MaxPasswordAge_d",
    "PostureNotRead": "PostureNotRead_s",
    "TagsRead": "TagsRead_b",
    "TagsNotRead": "TagsNotRead_s",
    "MaxExceptionDays": "MaxExceptionDays_d",
}


USER_COLUMNS: Mapping[str, str] = {
    "loggedDate": "loggedDate_t",
    "account_number": "account_number_s",
    "user": "user_s",
    "UserArn": "UserArn_s",
    "Path": "Path_s",
    "CreateDate": "CreateDate_t",
    "PasswordEnabled": "PasswordEnabled_b",
    "PasswordLastUsed": "PasswordLastUsed_t",
    "PasswordLastChanged": "PasswordLastChanged_t",
    "MfaActive": "MfaActive_b",
    "ActiveKeys": "ActiveKeys_d",
    "Keys": "Keys_d",
    "LastActivity": "LastActivity_t",
    "HardwareMfa": "HardwareMfa_b",
    "Owner": "Owner_s",
    "OwnerTags": "OwnerTags_s",
    "Exceptions": "Exceptions_s",
    "RunId": "RunId_g",
}


def stream_record(row: Row, columns: Mapping[str, str]) -> Row:
    """The row under its table's column names, plus TimeGenerated (= loggedDate), as a DCR stream expects it.

    A field the table does not declare is a programming error (the Logs Ingestion API would drop it
    silently), so it raises instead of vanishing.
    """
    unknown = [name for name in row if name not in columns]
    if unknown:
        raise KeyError(f"fields not declared in queries/schema.json: {', '.join(sorted(unknown))}")
    record: Row = {TIME_GENERATED: row[TIME_GENERATED_FIELD]} if TIME_GENERATED_FIELD in row else {}
    record.update((columns[name], value) for name, value in row.items() if value is not None)
    return record
