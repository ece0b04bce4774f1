"""What an estate's latest complete inventory implies for each query, computed from moto's objects, not from KQL.

The tests and `make demo` compare the dashboards with this. The thresholds are the documented defaults
(docs/queries.md), counted as the record counts them: whole days at run time (`KeyAgeDays`,
`DaysSinceLastUse`), failing when "over N". Stated again here on purpose: this is the independent side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sandbox.estate import Estate, EstateKey, EstateUser

ROTATION_DAYS = 90
UNUSED_DAYS = 90
CIS_UNUSED_DAYS = 45
NEVER_USED_GRACE_DAYS = 7
SETUP_KEY_DAYS = 0  # a key created within the user's first day was created with the user


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

    def unused_45(self) -> tuple[EstateKey, ...]:
        """Active keys whose last use (or, never used, creation) is over 45 days ago: CIS 1.12, FSBP IAM.22."""
        return tuple(k for k in self.estate.keys if k.active and self.idle_or_age(k) > CIS_UNUSED_DAYS)

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
        """Active keys never used, created with a user that has a console password: CIS 1.11."""
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

    def compliance(self) -> dict[str, int]:
        """Failing keys or users per control, keyed as the queries' `controls` headers write the controls."""
        return {
            "CIS v5.0 1.4, CIS v6.0 2.3, FSBP IAM.4": len(self.root_keys()),
            "CIS v5.0 1.10, CIS v6.0 2.9, FSBP IAM.5": len(self.console_without_mfa()),
            "CIS v5.0 1.11, CIS v6.0 2.10": len(self.setup_keys()),
            "CIS v5.0 1.12, CIS v6.0 2.11, FSBP IAM.22": len(self.unused_45()),
            "CIS v5.0 1.13, CIS v6.0 2.12": len(self.users_with_two_active_keys()),
            "CIS v5.0 1.14, CIS v6.0 2.13, FSBP IAM.3": len(self.rotation_due()),
            "FSBP IAM.8": len(self.inactive_users()),
        }
