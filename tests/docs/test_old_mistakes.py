"""The checks fail on each mistake the guides once had (issue 17's table), fed back as they were written."""

from __future__ import annotations

import pytest

from tests.docs.check import problems, real

FENCE = "```sh\n{}\n```\n"

# (document, the old text, what the check must say)
OLD = {
    "certificate deleted as a password": (
        "docs/authentication.md",
        "### `kms`: the private key never leaves KMS\n\nRenewing: delete the old credential "
        '(`az ad app credential delete --id "$APP_ID" --key-id <old keyId>`).\n',
        "needs --cert",
    ),
    "external id never kept": (
        "docs/deployment.md",
        FENCE.format(
            "aws cloudformation create-stack-set --stack-set-name keyreport-member \\\n"
            "  --template-body file://cloudformation/member-role.yaml --capabilities CAPABILITY_NAMED_IAM \\\n"
            '  --parameters ParameterKey=CollectorRoleArn,ParameterValue="$ROLE_ARN" \\\n'
            "    ParameterKey=OrganizationId,ParameterValue=o-... \\\n"
            "    ParameterKey=ExternalId,ParameterValue=<the same external id>"
        ),
        "asks the reader for 'ParameterKey=ExternalId,ParameterValue=<the same external id>'",
    ),
    "StackSets without trusted access": (
        "docs/migration.md",
        FENCE.format(
            "aws cloudformation create-stack-set --stack-set-name keyreport-member \\\n"
            "  --template-body file://cloudformation/member-role.yaml --permission-model SERVICE_MANAGED"
        ),
        "activate-organizations-access",
    ),
    "StackSets from a delegated administrator without --call-as": (
        "docs/migration.md",
        "In the management account (or a delegated administrator):\n\n"
        + FENCE.format(
            "aws cloudformation activate-organizations-access\n"
            "aws cloudformation create-stack-instances --stack-set-name keyreport-member --regions eu-west-1 \\\n"
            "  --deployment-targets OrganizationalUnitIds=r-abcd"
        ),
        "show --call-as DELEGATED_ADMIN",
    ),
    "table columns as name:type": (
        "docs/migration.md",
        "`az monitor log-analytics workspace table update -g <workspace-rg> --workspace-name <workspace> "
        "-n AWS_Access_Key_Report_Run_CL --columns <every existing custom column:type> ErrorDetail_s=string`.\n",
        "--columns takes name=type, not <every existing custom column:type>",
    ),
    "an alias for AzureSigningKeyArn": (
        "docs/authentication.md",
        FENCE.format(
            "make deploy STACK=keyreport ARTIFACT_BUCKET=b \\\n"
            '  PARAMS="AzureAuth=kms AzureSigningKeyArn=alias/keyreport-entra"'
        ),
        "AzureSigningKeyArn=alias/keyreport-entra: does not match AllowedPattern",
    ),
    "an extension command without the extension": (
        "docs/queries.md",
        FENCE.format('az monitor log-analytics query -w "$WORKSPACE_ID" -o table --analytics-query "T | take 1"'),
        "needs `az extension add -n log-analytics` first",
    ),
    "the partition in the federated subject": (
        "docs/authentication.md",
        FENCE.format(
            'az ad app federated-credential create --id "$APP_ID" --parameters "{\n'
            '  \\"subject\\": \\"arn:aws:iam::$ACCOUNT_ID:role/$ROLE_NAME\\"\n}"'
        ),
        "hard-coded partition",
    ),
    "the workspace GUID where a resource id is wanted": (
        "docs/queries.md",
        FENCE.format(
            "az deployment group create -g <rg> --template-file azure/alerts.json \\\n"
            "  --parameters workspaceResourceId=<workspace id> actionGroupIds='[\"<action group id>\"]'"
        ),
        "workspaceResourceId=<workspace id>: the template wants a resource id",
    ),
    "the workbook's resource id passed back as its GUID": (
        "docs/queries.md",
        FENCE.format(
            'WORKBOOK_ID=$(az deployment group create -g "$RG" --template-file azure/workbook.json \\\n'
            '  --parameters workspaceResourceId="$WORKSPACE_RESOURCE_ID" \\\n'
            "  --query properties.outputs.workbookId.value -o tsv)\n"
            'az deployment group create -g "$RG" --template-file azure/workbook.json \\\n'
            '  --parameters workspaceResourceId="$WORKSPACE_RESOURCE_ID" workbookId="$WORKBOOK_ID"'
        ),
        "workbookId gets output workbookId",
    ),
    "an id made in one step, used in a later one, and never kept": (
        "docs/deployment.md",
        FENCE.format("ROLE_ARN=$(aws cloudformation describe-stacks --stack-name s --query Stacks[0].StackId)")
        + "\nLater:\n\n"
        + FENCE.format('aws cloudformation describe-stack-set --stack-set-name "$ROLE_ARN"'),
        "$ROLE_ARN comes from an earlier step; keep it in keyreport.env",
    ),
    "a region set but not exported": (
        "docs/deployment.md",
        FENCE.format(
            "REGION=eu-west-1 STACK=keyreport\n"
            'aws cloudformation deploy --stack-name "$STACK" --template-file cloudformation/template.yaml \\\n'
            "  --parameter-overrides CodeS3Bucket=b CodeS3Key=k"
        ),
        "export AWS_REGION",
    ),
    "make sandbox with a program's option": (
        "docs/deployment.md",
        "Measured against the sandbox (`make sandbox --users 2000`).\n",
        "the Makefile has no target --users",
    ),
    "a Key Vault write right after its role assignment": (
        "docs/deployment.md",
        FENCE.format(
            "VAULT=kv VAULT_ID=/subscriptions/s RG=rg WORKSPACE=ws\n"
            'az role assignment create --role "Key Vault Secrets Officer" '
            '--scope "$VAULT_ID" --assignee me@example.com\n'
            'az monitor log-analytics workspace get-shared-keys -g "$RG" -n "$WORKSPACE" \\\n'
            "  --query primarySharedKey -o tsv |\n"
            '  az keyvault secret set --vault-name "$VAULT" -n la-workspace-key --file /dev/stdin --output none'
        ),
        "right after a role assignment; retry it",
    ),
    "the vault's access policy": (
        "docs/migration.md",
        "(and with them the Key Vault and its access policy)\n",
        "has role assignments, not access policies",
    ),
    "a preview api-version through az rest": (
        "docs/migration.md",
        FENCE.format(
            'az rest --method post --url "/subscriptions/s/resourcegroups/rg/providers/Microsoft.OperationalInsights/'
            'workspaces/ws/tables/T/migrate?api-version=2021-12-01-preview"'
        ),
        "a preview api-version",
    ),
}

# The parsers themselves: each kind of mistake they exist to catch.
WRONG = {
    "no such operation": (FENCE.format("aws iam list-user"), "iam has no operation list-user"),
    "no such flag": (FENCE.format("aws iam list-users --max-item 5"), "no option --max-item"),
    "a required member missing": (
        FENCE.format("aws secretsmanager create-secret --secret-string x"),
        "--name is required",
    ),
    "a value outside the enum": (
        FENCE.format("aws kms create-key --key-spec RSA_1024 --key-usage SIGN_VERIFY"),
        "RSA_1024 is not one of",
    ),
    "a shorthand member that does not exist": (
        FENCE.format(
            "aws cloudformation create-stack-instances --stack-set-name s --regions eu-west-1 "
            "--deployment-targets OrganizationalUnits=r-ab"
        ),
        "has no member OrganizationalUnits",
    ),
    "a shorthand value that is not a boolean": (
        FENCE.format(
            "aws cloudformation create-stack-set --stack-set-name s --template-body file://cloudformation/member-role.yaml"
            " --auto-deployment Enabled=yes"
        ),
        "Enabled takes true or false",
    ),
    "TLS verification turned off": (FENCE.format("aws iam list-users --no-verify-ssl"), "turns TLS verification off"),
    "a template parameter that does not exist": (
        FENCE.format('make deploy ARTIFACT_BUCKET=b PARAMS="WorkspaceGuid=0"'),
        "has no parameter WorkspaceGuid",
    ),
    "a value outside AllowedValues": (
        FENCE.format('make deploy ARTIFACT_BUCKET=b PARAMS="AzureAuth=default"'),
        "not one of",
    ),
    "an az flag that does not exist": (FENCE.format("az keyvault create -g rg -n kv --rbac true"), "no option --rbac"),
    "an az choice that does not exist": (FENCE.format("az account show -o csv"), "csv is not one of"),
    "an ARM parameter of the wrong type": (
        FENCE.format(
            "az deployment group create -g rg --template-file azure/logs-ingestion.json \\\n"
            "  -p workspaceName=w principalId=p createTables=no"
        ),
        "a bool parameter takes true or false",
    ),
    "a keyreport command that does not exist": (FENCE.format("keyreport report"), "keyreport has no command"),
    "a keyreport flag that does not exist": (FENCE.format("keyreport run --dry-run"), "no option --dry-run"),
    "a keyreport choice that does not exist": (
        FENCE.format("keyreport run --auth password"),
        "--auth password is not one of",
    ),
    "a query that is not shipped": (FENCE.format("keyreport query keys-due"), "no shipped query keys-due"),
    "a --query that is not JMESPath": (
        FENCE.format("aws cloudformation describe-stacks --stack-name s --query \"Stacks[0].Outputs[?OutputKey=='F'\""),
        "is not JMESPath",
    ),
    "a file the prose names that does not exist": (
        "`secretsmanager:GetSecretValue` (`secrets.py`)\n",
        "names secrets.py",
    ),
    "a make variable the Makefile never reads": (FENCE.format("make demo SINKS=both"), "reads no variable SINKS"),
    # Issue 25's findings, as they were written.
    "a purge command azure-cli does not have": (
        FENCE.format("az monitor log-analytics workspace table purge -g rg --workspace-name w -n t"),
        "not an az command",
    ),
    "the AWS CLI v1 from pip": (FENCE.format("pip install awscli"), "installs the AWS CLI v1"),
    "a role policy before the role exists": (
        FENCE.format(
            "aws iam put-role-policy --role-name keyreport-collector --policy-name p --policy-document '{}'\n"
            'make deploy STACK=keyreport ARTIFACT_BUCKET=b PARAMS="FunctionRoleName=keyreport-collector"'
        ),
        "is not created before this",
    ),
    "a query's range misquoted": ("A key appears twice in `rotation-due` (its range is `P2D`).\n", "has range P30D"),
    "an output read from a deployment never made": (
        FENCE.format("DCR_ID=$(az deployment group show -g rg -n nowhere --query properties.outputs.x.value -o tsv)"),
        "no earlier `az deployment group create -n nowhere`",
    ),
    "an output the template does not have": (
        FENCE.format(
            "az deployment group create -g rg -n li --template-file azure/logs-ingestion.json "
            "--parameters workspaceName=w principalId=p\n"
            "DCR_ID=$(az deployment group show -g rg -n li --query properties.outputs.dcrId.value -o tsv)"
        ),
        "has no output dcrId",
    ),
}


def _problems_with(doc: str, text: str) -> list[str]:
    return problems(real() | {doc: text})


@pytest.mark.parametrize("name", sorted(OLD))
def test_each_old_mistake_is_caught(name: str) -> None:
    doc, text, expected = OLD[name]
    found = _problems_with(doc, text)
    assert any(expected in problem for problem in found), f"{name}: {expected!r} not in\n" + "\n".join(found)


@pytest.mark.parametrize("name", sorted(WRONG))
def test_each_kind_of_wrong_command_is_caught(name: str) -> None:
    text, expected = WRONG[name]
    found = _problems_with("docs/migration.md", text)
    assert any(expected in problem for problem in found), f"{name}: {expected!r} not in\n" + "\n".join(found)


def test_a_shell_block_that_does_not_parse_is_named() -> None:
    with pytest.raises(AssertionError, match=r"docs/migration.md:2: this shell block does not parse"):
        _problems_with("docs/migration.md", FENCE.format("aws iam list-users --query 'Users"))
