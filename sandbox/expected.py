"""What an estate's latest complete inventory implies for each query, computed from moto's objects, not from KQL.

The tests and `make demo` compare the dashboards with this. The thresholds are the documented defaults
(docs/queries.md), counted as the record counts them: whole days at run time (`KeyAgeDays`,
`DaysSinceLastUse`), failing when "over N". Stated again here on purpose: this is the independent side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

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
MAX_EXCEPTION_DAYS = 365  # KEYREPORT_MAX_EXCEPTION_DAYS's default
EXCEPTION_TAG = re.compile(r"keyreport-exception(-.+)?", re.IGNORECASE)


@dataclass(frozen=True)
class TagException:
    """One keyreport-exception tag as docs/queries.md reads it; `check` is None when it is refused."""

    user: str
    tag: str
    check: str | None  # a check id, "all", or None (refused)
    key: str  # a masked key id, or "" for every credential of the user
    until: date | None

    def covers(self, check: str, resource: str, today: date) -> bool:
        if self.check is None or self.until is None or self.until < today or check == "exception-valid":
            return False
        target = f"{self.user} {self.key}" if self.key else None
        owned = resource == target if target else resource == self.user or resource.startswith(f"{self.user} ")
        return self.check in ("all", check) and owned


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

    def tag_exceptions(self) -> tuple[TagException, ...]:
        """The users' keyreport-exception tags, judged by the documented grammar at the run's day."""
        return tuple(
            _tag_exception(user.name, key, value, self.run_time.date(), self._masked_keys(user.name))
            for user in self.estate.users
            for key, value in user.tags
            if EXCEPTION_TAG.fullmatch(key)
        )

    def _masked_keys(self, user_name: str) -> set[str]:
        return {mask_key_id(key.access_key_id) for key in self.estate.keys_of(user_name)}

    def owner(self, user_name: str) -> str:
        """The first of the default owner tags (owner, team) the user carries with a value, whatever their case."""
        [user] = [u for u in self.estate.users if u.name == user_name]
        tags = {key.lower(): value for key, value in user.tags}
        return next((tags[name] for name in ("owner", "team") if tags.get(name)), "")

    def excepted(self, today: date) -> dict[str, set[str]]:
        """Per check: the failing resources an active tag exception covers on `today`."""
        exceptions = self.tag_exceptions()

        def covered(control: str, resource: str) -> bool:
            return any(e.covers(control, resource, today) for e in exceptions)

        return {
            control: {resource for resource, failing in rows.items() if failing and covered(control, resource)}
            for control, rows in self.findings().items()
        }

    def compliance(self, today: date | None = None) -> dict[str, tuple[int, int, int]]:
        """Per check with at least one resource: (failing, excepted, checked), as compliance-summary counts them;
        exception-valid: one row per exception tag, failing when refused."""
        excepted = self.excepted(today or self.run_time.date())
        counts = {
            control: (sum(rows.values()) - len(excepted[control]), len(excepted[control]), len(rows))
            for control, rows in self.findings().items()
        }
        exceptions = self.tag_exceptions()
        if exceptions:
            counts["exception-valid"] = (sum(e.check is None for e in exceptions), 0, len(exceptions))
        return counts

    def failing_by_control_text(self) -> dict[str, int]:
        """Failing per check, exceptions or not, keyed by its benchmark ids as text (the trend's Control column)."""
        controls = compliance.load().controls
        return {controls[control].text: sum(rows.values()) for control, rows in self.findings().items()}


def _tag_exception(user: str, tag: str, value: str, today: date, keys: set[str]) -> TagException:
    """`<check> [key=<masked>] until=<YYYY-MM-DD> by=<approver> reason=<text>`: refused (check None) unless every
    part is there, the check is known, the expiry is at most MAX_EXCEPTION_DAYS after `today`, and a key named is
    one of the user's (`keys`) and the check one a key can fail."""
    head, _, reason = value.partition(" reason=")
    words = head.split()
    fields = dict(word.split("=", 1) for word in words[1:] if "=" in word)
    names = {c.id: c.id for c in compliance.load().controls.values() if c.resource != "exception"}
    for control in compliance.load().controls.values():
        for benchmark, benchmark_id in control.benchmarks.items():
            names[("CIS-" if benchmark.startswith("CIS") else "") + benchmark_id.lower()] = control.id
    names = {name.lower(): control for name, control in names.items()} | {"all": "all"}
    resources = {control.id: control.resource for control in compliance.load().controls.values()}
    check = names.get(words[0].lower()) if words else None
    try:
        until = date.fromisoformat(fields["until"]) if "until" in fields else None
    except ValueError:
        until = None
    key = fields.get("key", "")
    valid = (
        check is not None
        and until is not None
        and until <= today + timedelta(days=MAX_EXCEPTION_DAYS)
        and bool(fields.get("by"))
        and bool(reason.strip())
        and all("=" in word for word in words[1:])
        and (not key or (key in keys and (check == "all" or resources.get(check) in ("key", "credential"))))
    )
    return TagException(user, tag, check if valid else None, key, until)
