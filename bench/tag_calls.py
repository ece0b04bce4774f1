"""IAM calls and wall time to read every user's owner and exception tags: GetAccountAuthorizationDetails pages
against one ListUserTags call per user, and what the tag read adds to a whole inventory.

    python -m bench.tag_calls --users 1000 5000 --latency 0 0.05

The estate is `sandbox.estate` (owner, team, an unrelated tag and the exception cases) in the moto server of
`sandbox.aws` (this process, reached over HTTP on 127.0.0.1). moto answers GetAccountAuthorizationDetails in one
page whatever MaxItems says; here it pages as IAM does (MaxItems, at most 1,000, and a Marker), like
bench.iam_conditions.iam_paging does for ListUsers, so the call counts are IAM's. `--latency` adds that many
seconds to every IAM call on the wire (bench.iam_conditions), as IAM's round trip would. ListUserTags runs
KEYREPORT_IAM_CONCURRENCY (24) at a time, as the inventory's per-user calls do; GetAccountAuthorizationDetails is
the product's own TagWatch (pages in sequence). The inventory is the product's Inventory, with and without tags.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from typing import Any

from moto.core.responses import ActionResult
from moto.iam.responses import IamResponse

from bench.iam_conditions import IamConditions, answering, iam_page, iam_paging
from keyreport.aws.inventory import Inventory, bounded_map
from keyreport.aws.user_tags import TagWatch, read_user_tags
from keyreport.settings import Settings
from keyreport.tags import TagRules
from sandbox.aws import AwsSandbox
from sandbox.estate import seed_estate

RULES = TagRules()
CONCURRENCY = Settings.from_env({"KEYREPORT_SINK": "stdout"}).iam_concurrency


def authorization_details_paging() -> contextlib.AbstractContextManager[None]:
    """GetAccountAuthorizationDetails (Filter User) in pages of MaxItems (at most 1,000) with a Marker, as IAM
    pages it; moto returns every user at once."""

    def paged(self: IamResponse) -> ActionResult:
        details = self.backend.get_account_authorization_details(self._get_param("Filter", []))
        users, more = iam_page(self, list(details["users"]))
        return ActionResult({
            "UserDetailList": users,
            "GroupDetailList": details["groups"],
            "RoleDetailList": details["roles"],
            "Policies": details["managed_policies"],
            **more,
        })  # fmt: skip

    return answering("get_account_authorization_details", paged)


def client(aws: AwsSandbox, latency: float) -> tuple[Any, IamConditions]:
    conditions = IamConditions(latency)
    session = conditions.install(aws.session())
    return session.client("iam", endpoint_url=aws.endpoint_url), conditions


def measure(aws: AwsSandbox, users: int, latency: float) -> dict[str, Any]:
    iam, conditions = client(aws, latency)
    started = time.monotonic()
    watch = TagWatch(iam, RULES)
    tagged = watch.tags() or {}
    gaad_seconds = time.monotonic() - started
    gaad_calls = conditions.calls["GetAccountAuthorizationDetails"]

    iam, conditions = client(aws, latency)
    names = [user["UserName"] for page in iam.get_paginator("list_users").paginate() for user in page["Users"]]
    started = time.monotonic()
    read = bounded_map(lambda name: read_user_tags(iam, name, RULES), names, CONCURRENCY)
    per_user = {name: tags for name, tags in zip(names, read, strict=True) if tags}
    list_seconds = time.monotonic() - started
    assert per_user == tagged, "both reads must find the same tags"

    inventory_seconds: dict[str, Any] = {}
    for label, rules in (("without_tags", None), ("with_tags", RULES)):
        iam, conditions = client(aws, latency)
        started = time.monotonic()
        inventory = Inventory(iam, concurrency=CONCURRENCY, tag_rules=rules)
        for _ in inventory.records():
            pass
        assert len(inventory.users()) == users and inventory.tags_read == (rules is not None)
        inventory_seconds[label] = round(time.monotonic() - started, 2)
        inventory_seconds[f"{label}_calls"] = dict(conditions.calls)
    return {
        "users": users,
        "latency": latency,
        "users_tagged": len(tagged),
        "gaad_calls": gaad_calls,
        "gaad_seconds": round(gaad_seconds, 2),
        "list_user_tags_calls": len(names),
        "list_user_tags_seconds": round(list_seconds, 2),
        "inventory": inventory_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.05])
    args = parser.parse_args()
    with AwsSandbox() as aws, iam_paging(), authorization_details_paging():
        for users in args.users:
            aws.reset()
            seed_estate(aws.client("iam"), users=users)
            for latency in args.latency:
                print(json.dumps(measure(aws, users, latency)), flush=True)


if __name__ == "__main__":
    main()
