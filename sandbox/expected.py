"""What an estate's latest complete inventory implies for each query, computed from moto's objects, not from KQL.

The tests and `make demo` compare the dashboards with this. The thresholds are the documented defaults
(docs/queries.md), counted as the record counts them: whole days at run time (`KeyAgeDays`,
`DaysSinceLastUse`), failing when "over N". Stated again here on purpose: this is the independent side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from keyreport.queries import compliance
from keyreport.records import ROOT_USER, mask_key_id
from sandbox.estate import Estate, EstateKey, EstateUser

ROTATION_DAYS = 90
UNUSED_DAYS = 90
CIS_UNUSED_DAYS = 45
NEVER_USED_GRACE_DAYS = 7
SETUP_KEY_DAYS = 0  # a key created within the user's first day was created with the user
ROOT_USE_DAYS = 7  # the root user used fewer whole days before the run fails
CIS_PASSWORD_LENGTH, CIS_PASSWORD_REUSE, HUB_PASSWORD_LENGTH = 14, 24, 8


def whole_days(later: datetime, earlier: datetime) -> int:
    return max(0, (later - earlier).days)


@dataclass(frozen=True)
class Expected:
    """The estate as a run at `run_time` saw it."""

    estate: Estate
    run_time: datetime

    def age(self, key: EstateKey) -> int:
        return whole_days(self.run_time, key.create_date)

    def idle(self, key: EstateKey) -> int | None:
        return None if key.last_used_date is None else whole_days(self.run_time, key.last_used_date)

    def rotation_due(self) -> tuple[EstateKey, ...]:
        return tuple(k for k in self.estate.keys if k.active and self.age(k) > ROTATION_DAYS)

    def never_used(self) -> tuple[EstateKey, ...]:
        return tuple(k for k in self.estate.keys if k.never_used and self.age(k) > NEVER_USED_GRACE_DAYS)

    def stale(self) -> tuple[EstateKey, ...]:
        return tuple(k for k in self.estate.keys if (self.idle(k) or 0) > UNUSED_DAYS)

    def unused_45(self) -> tuple[str, ...]:
        """Console passwords and active keys unused 45 days or more, as "user credential" (unused-45-days)."""
        return self.failing("unused-45-days")

    def unused_90(self) -> tuple[str, ...]:
        return self.failing("unused-90-days")

    def failing(self, control: str) -> tuple[str, ...]:
        """The resources failing a check, as KeyReport_Findings' Resource names them."""
        return tuple(sorted(resource for resource, failing in self.findings().get(control, {}).items() if failing))

    def idle_or_age(self, key: EstateKey) -> int:
        idle = self.idle(key)
        return self.age(key) if idle is None else idle

    def inactive(self) -> tuple[EstateKey, ...]:
        return self.estate.inactive()

    def root_keys(self) -> tuple[EstateKey, ...]:
        return self.estate.root_keys

    def users_with_two_active_keys(self) -> tuple[str, ...]:
        return tuple(
            user.name for user in self.estate.users if sum(k.active for k in self.estate.keys_of(user.name)) >= 2
        )

    def last_activity(self, user: EstateUser) -> datetime | None:
        uses = [k.last_used_date for k in self.estate.keys_of(user.name) if k.last_used_date is not None]
        if user.password_last_used is not None:
            uses.append(user.password_last_used)
        return max(uses, default=None)

    def console_without_mfa(self) -> tuple[EstateUser, ...]:
        return tuple(user for user in self.estate.users if user.password_enabled and not user.mfa_active)

    def inactive_users(self) -> tuple[EstateUser, ...]:
        """No sign-in and no key use for over 90 days (a user never active counts from its creation)."""
        return tuple(
            user
            for user in self.estate.users
            if whole_days(self.run_time, self.last_activity(user) or user.create_date) > UNUSED_DAYS
        )

    def setup_keys(self) -> tuple[EstateKey, ...]:
        """Active keys never used, created with a user that has a console password (CIS v6.0 2.10)."""
        found = []
        for user in self.estate.users:
            if not user.password_enabled:
                continue
            found += [
                k
                for k in self.estate.keys_of(user.name)
                if k.active and k.never_used and whole_days(k.create_date, user.create_date) <= SETUP_KEY_DAYS
            ]
        return tuple(found)

    def findings(self) -> dict[str, dict[str, bool]]:
        """Per check of the compliance map: resource (as KeyReport_Findings writes it) -> failing.

        The benchmarks' boundaries, counted on their own here: unused "N days or more" (a credential never used
        counts from its creation; moto sets a password's last change to the user's creation), rotation "over
        90 days", per console password and per active key.
        """
        found: dict[str, dict[str, bool]] = {control: {} for control in compliance.load().controls}
        self._root_and_policy(found)
        for user in self.estate.users:
            keys = self.estate.keys_of(user.name)
            found["one-active-key"][user.name] = sum(k.active for k in keys) > 1
            credentials: list[tuple[str, int]] = []
            if user.password_enabled:
                found["console-mfa"][f"{user.name} password"] = not user.mfa_active
                since = user.password_last_used or user.create_date
                credentials.append((f"{user.name} password", whole_days(self.run_time, since)))
            for key in keys:
                resource = f"{user.name} {mask_key_id(key.access_key_id)}"
                if user.password_enabled:
                    setup = whole_days(key.create_date, user.create_date) <= SETUP_KEY_DAYS
                    found["setup-key"][resource] = key.active and key.never_used and setup
                if key.active:
                    found["key-rotation-90-days"][resource] = self.age(key) > ROTATION_DAYS
                    credentials.append((resource, self.idle_or_age(key)))
            for resource, unused in credentials:
                found["unused-45-days"][resource] = unused >= CIS_UNUSED_DAYS
                found["unused-90-days"][resource] = unused >= UNUSED_DAYS
        return {control: rows for control, rows in found.items() if rows}

    def _root_and_policy(self, found: dict[str, dict[str, bool]]) -> None:
        root, policy = self.estate.root, self.estate.password_policy
        if root is not None:
            credentials = root.password or bool(self.estate.root_keys)
            found["root-access-key"][ROOT_USER] = bool(self.estate.root_keys)
            found["root-mfa"][ROOT_USER] = credentials and not root.mfa
            found["root-hardware-mfa"][ROOT_USER] = credentials and not root.hardware_mfa
            idle = None if root.last_activity is None else whole_days(self.run_time, root.last_activity)
            found["root-recent-use"][ROOT_USER] = idle is not None and idle < ROOT_USE_DAYS
        if root is not None and policy is not None:
            length = policy.minimum_length or 0
            strong = all((policy.require_symbols, policy.require_numbers, policy.require_uppercase,
                          policy.require_lowercase)) and length >= HUB_PASSWORD_LENGTH  # fmt: skip
            found["password-policy-length"]["<password_policy>"] = not policy.present or length < CIS_PASSWORD_LENGTH
            reuse = policy.reuse_prevention or 0
            found["password-policy-reuse"]["<password_policy>"] = not policy.present or reuse < CIS_PASSWORD_REUSE
            found["password-policy-strong"]["<password_policy>"] = not policy.present or not strong

    def compliance(self) -> dict[str, tuple[int, int]]:
        """Per check with at least one resource: (failing, checked), as compliance-summary counts them."""
        return {control: (sum(rows.values()), len(rows)) for control, rows in self.findings().items()}

    def failing_by_control_text(self) -> dict[str, int]:
        """Failing per check, keyed by its benchmark ids as text (the trend's Control column)."""
        controls = compliance.load().controls
        return {controls[control].text: failing for control, (failing, _) in self.compliance().items()}
