"""A realistic, deterministic synthetic IAM estate in moto, and the truth about it for assertions.

moto stamps every user and key with the current time and has no API to back-date them, so seeding
runs where moto runs (this process: ``AwsSandbox`` or ``mock_aws``) and adjusts moto's own objects:
``iam_backends[account]["aws"].users[name]`` -> ``User`` (``create_date``, ``password``,
``password_last_used``, ``mfa_devices``, ``access_keys``) and ``AccessKey`` (naive-UTC
``create_date``, ``status``, ``last_used = AccessKeyLastUsed(timestamp, service, region)``). Users,
login profiles, MFA devices and keys are still created through moto's backend methods (the ones its
HTTP handlers call), so the objects are the ones moto would build; only times and ids are rewritten.
The first user goes over HTTP, which also proves the client talks to this process's moto.

moto's credential report has no ``<root_account>`` row and always says ``not_supported`` for
``access_key_N_last_used_region/service``. ``credential_report="aws"`` (the default) replaces, on the
seeded account's backend only, moto's report with one rendered AWS's way from the same objects: root
row first, region/service filled in (``N/A`` when never used), ``password_last_used`` and
``password_last_changed`` ``N/A`` without a password, RFC 4180 quoting. ``"moto"`` leaves moto's report alone.

``Estate`` is read back from moto's objects after seeding (``read_estate``), never from the plan.
"""

from __future__ import annotations

import base64
import csv
import io
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from moto.iam.models import AccessKeyLastUsed, iam_backends
from moto.iam.utils import ACCOUNT_OFFSET, AWS_ROLE_ALPHABET

from keyreport.records import PasswordPolicy
from sandbox.aws import AwsSandbox

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

ROOT_USER = "<root_account>"

# The credential report's columns, in AWS's (and moto's) order.
REPORT_COLUMNS: tuple[str, ...] = (
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
)
_REPORT_DATE = "%Y-%m-%dT%H:%M:%S+00:00"
_VALID_USER_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)

ReportStyle = Literal["aws", "moto"]
KeyStatus = Literal["Active", "Inactive"]


# -- the truth ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EstateKey:
    """One access key as moto holds it. Times are UTC-aware, whole seconds."""

    user_name: str
    user_arn: str
    # The full id; for the root user "root:1" / "root:2", as the credential report gives no id.
    access_key_id: str
    slot: int  # 1 or 2: the credential report's access_key_N columns (moto: list_access_keys order)
    status: KeyStatus
    create_date: datetime
    last_used_date: datetime | None  # None: never used
    last_used_service: str | None
    last_used_region: str | None
    password_enabled: bool | None  # None for the root user: its report row says "not_supported"
    mfa_active: bool

    @property
    def is_root(self) -> bool:
        return self.user_name == ROOT_USER

    @property
    def active(self) -> bool:
        return self.status == "Active"

    @property
    def never_used(self) -> bool:
        return self.last_used_date is None

    def age(self, at: datetime) -> timedelta:
        return at - self.create_date

    def since_last_use(self, at: datetime) -> timedelta | None:
        return None if self.last_used_date is None else at - self.last_used_date


@dataclass(frozen=True)
class EstateUser:
    name: str
    arn: str
    path: str
    user_id: str
    create_date: datetime
    password_enabled: bool
    password_last_used: datetime | None
    mfa_active: bool
    access_key_ids: tuple[str, ...]  # in slot order
    tags: tuple[tuple[str, str], ...] = ()  # every IAM tag of the user (key, value), as ListUserTags gives them


@dataclass(frozen=True)
class EstateRoot:
    """The root user's posture, as the credential report's root row and GetAccountSummary tell it."""

    created: datetime
    password: bool  # AccountPasswordPresent
    mfa: bool
    hardware_mfa: bool  # MFA and no virtual MFA device of the root user
    last_activity: datetime | None  # the latest of its sign-in and its keys' last use


@dataclass(frozen=True)
class Estate:
    """What the seeded account holds. ``now`` is the seeding time every age is relative to."""

    account_id: str
    now: datetime
    users: tuple[EstateUser, ...]  # IAM users in list_users order; the root user is not one
    keys: tuple[EstateKey, ...]  # every key, root keys (if any) first, then users' keys in slot order
    credential_report: ReportStyle
    seed: int | None = field(default=None, compare=False)  # None when read back with read_estate
    root: EstateRoot | None = None  # None without the AWS-shaped report (moto's has no root row)
    password_policy: PasswordPolicy | None = None  # as GetAccountPasswordPolicy tells it; present=False: none
    _by_id: dict[str, EstateKey] = field(init=False, repr=False, compare=False)
    _by_user: dict[str, EstateUser] = field(init=False, repr=False, compare=False)
    _by_owner: dict[str, tuple[EstateKey, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        owners: dict[str, list[EstateKey]] = {}
        for key in self.keys:
            owners.setdefault(key.user_name, []).append(key)
        object.__setattr__(self, "_by_id", {key.access_key_id: key for key in self.keys})
        object.__setattr__(self, "_by_user", {user.name: user for user in self.users})
        object.__setattr__(self, "_by_owner", {name: tuple(keys) for name, keys in owners.items()})

    @property
    def user_count(self) -> int:
        """IAM users (what list_users returns; the root user is not counted)."""
        return len(self.users)

    @property
    def key_count(self) -> int:
        """Every key: IAM users' keys plus the root user's."""
        return len(self.keys)

    @property
    def iam_keys(self) -> tuple[EstateKey, ...]:
        return tuple(key for key in self.keys if not key.is_root)

    @property
    def root_keys(self) -> tuple[EstateKey, ...]:
        return tuple(key for key in self.keys if key.is_root)

    def key(self, access_key_id: str) -> EstateKey:
        return self._by_id[access_key_id]

    def user(self, name: str) -> EstateUser:
        return self._by_user[name]

    def keys_of(self, user_name: str) -> tuple[EstateKey, ...]:
        """A user's keys in slot order (``ROOT_USER`` for the root user's)."""
        return self._by_owner.get(user_name, ())

    def active(self) -> tuple[EstateKey, ...]:
        return tuple(key for key in self.keys if key.active)

    def inactive(self) -> tuple[EstateKey, ...]:
        return tuple(key for key in self.keys if not key.active)

    def keys_older_than(
        self, days: float, *, at: datetime | None = None, active_only: bool = False
    ) -> tuple[EstateKey, ...]:
        """Keys created strictly more than ``days`` x 24 h before ``at`` (default: ``now``)."""
        limit = timedelta(days=days)
        at = at or self.now
        return tuple(key for key in self.keys if key.age(at) > limit and (key.active or not active_only))

    def never_used(self) -> tuple[EstateKey, ...]:
        return tuple(key for key in self.keys if key.never_used)

    def unused_for(
        self, days: float, *, at: datetime | None = None, include_never_used: bool = False
    ) -> tuple[EstateKey, ...]:
        """Keys last used strictly more than ``days`` ago; never-used keys only if asked for, and then
        only those older than ``days`` (a key created yesterday has not been "unused for 90 days")."""
        limit = timedelta(days=days)
        at = at or self.now
        found = []
        for key in self.keys:
            idle = key.since_last_use(at)
            if idle is None:
                idle = key.age(at) if include_never_used else None
            if idle is not None and idle > limit:
                found.append(key)
        return tuple(found)

    def users_with_two_active_keys(self) -> tuple[str, ...]:
        return tuple(
            user.name
            for user in self.users
            if len(user.access_key_ids) == 2 and all(self.key(key_id).active for key_id in user.access_key_ids)
        )


# -- the plan (pure: a function of seed and now) -------------------------------------------------------


@dataclass(frozen=True)
class _KeyPlan:
    created: datetime
    status: KeyStatus
    last_used: tuple[datetime, str, str] | None  # (when, service, region)


@dataclass(frozen=True)
class _UserPlan:
    name: str
    path: str
    created: datetime
    password: bool
    password_last_used: datetime | None
    mfa_enabled: datetime | None
    keys: tuple[_KeyPlan, ...]


@dataclass(frozen=True)
class _RootPlan:
    created: datetime
    password_last_used: datetime | None
    mfa_active: bool
    keys: tuple[_KeyPlan, ...]


_FIRST = (  # noqa: SIM905 - a word list reads better as text
    "alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert sybil "
    "trent victor walter yasmin zoe liam noah emma ava mia lucas mateo sofia arjun priya wei mei "
    "kenji yuki omar fatima lars ingrid pierre chloe diego lucia tomasz agnieszka sean aoife kwame "
    "amara raj"
).split()
_LAST = (  # noqa: SIM905 - a word list reads better as text
    "smith johnson garcia nguyen patel kim mueller rossi silva kowalski obrien tanaka chen okafor "
    "haddad larsen dubois novak murphy ivanova schmidt martin lopez wang singh cohen fischer moreau "
    "berg costa andersen yilmaz mendes kaur park sato ali jensen horvat walsh"
).split()
_SERVICE_BASES = (  # noqa: SIM905 - a word list reads better as text
    "deploy terraform jenkins backup-s3-sync datadog splunk-forwarder github-actions gitlab-runner "
    "airflow etl-nightly reporting billing-export log-shipper external-dns cert-manager velero "
    "grafana sentry legacy-ftp-bridge snowflake-loader"
).split()
# Valid (IAM allows [\w+=,.@-], 1-64 chars) but unusual: they break naive CSV, URL and log handling.
_ODD_NAMES = (
    "o.brien+admin",
    "svc=reporting,eu",
    "first.last@corp.example.com",
    "_-.+=,@",
    "a",
    "1234567890",
    "ops-bot@team+oncall",
    "legacy-billing-export-service-account-for-the-finance-team-2019-",  # 64 characters
)
_HUMAN_PATHS = (("/", 60), ("/engineering/", 20), ("/engineering/platform/", 8), ("/contractors/", 6), ("/finance/", 6))
_SERVICE_PATHS = (("/", 35), ("/service-accounts/", 45), ("/data/analytics/", 10), ("/ci/", 10))
_SERVICES = (
    ("s3", 30),
    ("sts", 15),
    ("ec2", 12),
    ("iam", 8),
    ("lambda", 8),
    ("dynamodb", 8),
    ("sqs", 5),
    ("cloudformation", 4),
    ("ecr", 4),
    ("kms", 3),
    ("secretsmanager", 3),
)
_REGIONS = (
    ("us-east-1", 40),
    ("us-west-2", 15),
    ("eu-west-1", 15),
    ("eu-central-1", 10),
    ("ap-southeast-2", 5),
    ("ap-northeast-1", 5),
    ("ca-central-1", 5),
    ("sa-east-1", 5),
)
_MAX_AGE_DAYS = 2190.0  # ~6 years

# Each interesting case appears a handful of times (fewer in tiny estates), the rest is random.
_CASES = (
    "old_active_recent",  # active, > 90 days old, used this week
    "stale",  # active, last used 91+ days ago
    "never_used_old",  # active, > 90 days old, never used
    "never_used_new",  # active, < 30 days old, never used
    "inactive",
    "two_active",  # rotation in progress: two active keys
    "active_plus_inactive",
    "no_keys_console",  # console user with password + MFA, no keys
    "fresh",  # created one day ago
    "ancient",  # ~6 years old, still used
    "near_90_under",  # 89.5 days old, last used 89.4 days ago
    "near_90_over",  # 90.5 days old, last used 90.4 days ago
)


def _weighted(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([value for value, _ in table], weights=[weight for _, weight in table])[0]


class _Planner:
    def __init__(self, seed: int, now: datetime, *, allow_commas: bool) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.allow_commas = allow_commas
        self._taken: set[str] = set()  # IAM user names are unique case-insensitively

    def ago(self, days: float) -> datetime:
        return self.now - timedelta(seconds=round(days * 86400))

    def uniform_days(self, low: float, high: float) -> float:
        return self.rng.uniform(low, max(low, high))

    def last_use(self, created: datetime, days_ago: float) -> tuple[datetime, str, str]:
        when = max(created, self.ago(days_ago))
        service = _weighted(self.rng, _SERVICES)
        # IAM is global: its calls are recorded in us-east-1.
        region = "us-east-1" if service == "iam" else _weighted(self.rng, _REGIONS)
        return when, service, region

    def key(self, age: float, status: KeyStatus = "Active", used_days_ago: float | None = None) -> _KeyPlan:
        created = self.ago(age)
        used = None if used_days_ago is None else self.last_use(created, min(used_days_ago, age))
        return _KeyPlan(created, status, used)

    def random_keys(self, service_account: bool) -> tuple[_KeyPlan, ...]:
        count = self.rng.choices((0, 1, 2), weights=(8, 60, 32) if service_account else (22, 62, 16))[0]
        ages = sorted((self.random_age() for _ in range(count)), reverse=True)  # slot 1 = older
        keys = []
        for slot, age in enumerate(ages, start=1):
            inactive = self.rng.random() < (0.3 if slot == 1 and count == 2 else 0.1)
            used = self.rng.random() < (0.9 if service_account else 0.75)
            keys.append(self.key(age, "Inactive" if inactive else "Active", self.random_idle(age) if used else None))
        return tuple(keys)

    def random_age(self) -> float:
        band = self.rng.random()
        if band < 0.35:
            return self.uniform_days(1, 90)
        if band < 0.75:
            return self.uniform_days(90, 730)
        return self.uniform_days(730, _MAX_AGE_DAYS)

    def random_idle(self, age: float) -> float:
        band = self.rng.random()
        if band < 0.5:
            return self.uniform_days(0.01, min(7, age))
        if band < 0.75:
            return self.uniform_days(7, min(90, age))
        return self.uniform_days(90, age)

    def case_keys(self, case: str) -> tuple[_KeyPlan, ...]:
        u = self.uniform_days
        if case == "old_active_recent":
            return (self.key(u(120, 2000), used_days_ago=u(0.01, 7)),)
        if case == "stale":
            age = u(200, _MAX_AGE_DAYS)
            return (self.key(age, used_days_ago=u(91, min(age, 720))),)
        if case == "never_used_old":
            return (self.key(u(91, 1500)),)
        if case == "never_used_new":
            return (self.key(u(1, 30)),)
        if case == "inactive":
            age = u(100, _MAX_AGE_DAYS)
            return (self.key(age, "Inactive", u(100, age) if self.rng.random() < 0.7 else None),)
        if case == "two_active":
            new = u(1, 20)
            return (self.key(u(100, 800), used_days_ago=u(20, 90)), self.key(new, used_days_ago=u(0.01, new)))
        if case == "active_plus_inactive":
            old, new = u(200, 1500), u(5, 60)
            return (self.key(old, "Inactive", u(60, old)), self.key(new, used_days_ago=u(0.01, new)))
        if case == "no_keys_console":
            return ()
        if case == "fresh":
            return (self.key(1 + u(0, 0.1)),)
        if case == "ancient":
            return (self.key(u(2150, _MAX_AGE_DAYS), used_days_ago=u(0.5, 30)),)
        if case == "near_90_under":
            return (self.key(89.5, used_days_ago=89.4),)
        if case == "near_90_over":
            return (self.key(90.5, used_days_ago=90.4),)
        raise ValueError(case)

    def unique(self, candidate: str) -> str:
        if not _VALID_USER_NAME.fullmatch(candidate):
            raise ValueError(f"not a valid IAM user name: {candidate!r}")
        name, n = candidate, 1
        while name.casefold() in self._taken:
            n += 1
            name = f"{candidate[: 64 - len(str(n))]}{n}"
        self._taken.add(name.casefold())
        return name

    def human_name(self) -> str:
        first, last = self.rng.choice(_FIRST), self.rng.choice(_LAST)
        style = self.rng.random()
        if style < 0.5:
            return f"{first}.{last}"
        if style < 0.75:
            return f"{first[0]}{last}"
        if style < 0.9:
            return f"{first}.{last}@example.com"
        return f"{first}_{last}"

    def service_name(self) -> str:
        prefix = self.rng.choice(("svc-", "app-", "ci-", ""))
        env = self.rng.choice(("-prod", "-staging", "-dev", ""))
        return f"{prefix}{self.rng.choice(_SERVICE_BASES)}{env}"

    def user(self, name: str, service_account: bool, case: str) -> _UserPlan:
        keys = self.case_keys(case) if case != "random" else self.random_keys(service_account)
        if keys:
            created = min(key.created for key in keys) - timedelta(seconds=round(self.uniform_days(0, 90) * 86400))
        else:
            created = self.ago(self.uniform_days(1, _MAX_AGE_DAYS))
        user_age = (self.now - created).total_seconds() / 86400
        console = case == "no_keys_console" or self.rng.random() < (0.03 if service_account else 0.65)
        password_last_used = None
        if console and self.rng.random() < 0.85:
            password_last_used = self.ago(self.uniform_days(0.01, min(user_age, 365)))
        mfa = case == "no_keys_console" or self.rng.random() < (0.75 if console else 0.02)
        mfa_enabled = self.ago(self.uniform_days(0, user_age)) if mfa else None
        path = _weighted(self.rng, _SERVICE_PATHS if service_account else _HUMAN_PATHS)
        return _UserPlan(name, path, created, console, password_last_used, mfa_enabled, keys)

    def users(self, count: int) -> list[_UserPlan]:
        copies = 3 if count >= 100 else 1
        cases = [case for case in _CASES for _ in range(copies)][:count]
        cases += ["random"] * (count - len(cases))
        self.rng.shuffle(cases)
        kinds = [case != "no_keys_console" and self.rng.random() < 0.2 for case in cases]
        odd = [name for name in _ODD_NAMES if self.allow_commas or "," not in name]
        odd_slots = set(self.rng.sample(range(count), min(len(odd), count // 25)))
        plans = []
        for index, (case, service_account) in enumerate(zip(cases, kinds, strict=True)):
            if index in odd_slots:
                candidate = odd.pop(0)
            else:
                candidate = self.service_name() if service_account else self.human_name()
            plans.append(self.user(self.unique(candidate), service_account, case))
        return plans

    def root(self, key_count: int, oldest_user: datetime) -> _RootPlan:
        created = min(oldest_user, self.ago(_MAX_AGE_DAYS)) - timedelta(days=30)
        keys: list[_KeyPlan] = []
        if key_count >= 1:  # the classic finding: an old root key, still active and in use
            keys.append(self.key(self.uniform_days(1200, 1800), used_days_ago=self.uniform_days(3, 40)))
        if key_count >= 2:
            keys.append(self.key(self.uniform_days(400, 1100), "Inactive", self.uniform_days(300, 400)))
        return _RootPlan(created, self.ago(self.uniform_days(1, 60)), True, tuple(keys))

    def access_key_id(self, account_id: str) -> str:
        # moto's scheme (moto.iam.utils.generate_access_key_id_from_account_id), our random source:
        # AKIA + base32(account) + a parity-dependent character + 11 random ones.
        number = int(account_id)
        account_part = _b32_account(number)
        alphabet = AWS_ROLE_ALPHABET[16:] if number % 2 else AWS_ROLE_ALPHABET[:16]
        head = "AKIA" + account_part + self.rng.choice(alphabet)
        return head + "".join(self.rng.choices(AWS_ROLE_ALPHABET, k=20 - len(head)))

    def user_id(self) -> str:
        return "AIDA" + "".join(self.rng.choices(string.ascii_uppercase + string.digits, k=17))

    def secret(self, length: int) -> str:
        return "".join(self.rng.choices(string.ascii_letters + string.digits + "+/", k=length))


def _b32_account(number: int) -> str:
    return base64.b32encode((number // 2 + ACCOUNT_OFFSET).to_bytes(5, "big")).decode()


# -- the AWS-style credential report ------------------------------------------------------------------


def _fmt(when: datetime | None, missing: str = "N/A") -> str:
    return missing if when is None else when.strftime(_REPORT_DATE)


def _last_used_columns(last_used: Any) -> list[str]:
    """access_key_N_last_used_date, _region, _service as AWS writes them."""
    if isinstance(last_used, AccessKeyLastUsed):
        return [_fmt(last_used.timestamp), last_used.region or "N/A", last_used.service or "N/A"]
    if isinstance(last_used, datetime):  # moto tolerates a bare datetime here (moto issue #5927)
        return [_fmt(last_used), "N/A", "N/A"]
    return ["N/A", "N/A", "N/A"]


_NO_KEY = ["false", "N/A", "N/A", "N/A", "N/A"]


class _AwsCredentialReport:
    """Installed as ``get_credential_report`` on one backend instance (an instance attribute, so
    moto's HTTP handler, which calls ``self.backend.get_credential_report()``, picks it up)."""

    def __init__(self, backend: Any, root: _RootPlan) -> None:
        self.backend = backend
        self.root = root
        self._moto_report: Callable[[], str] = type(backend).get_credential_report.__get__(backend)

    def __call__(self) -> str:
        # moto's own report first: it raises ReportNotPresent before generate_credential_report, and
        # its header tells us if moto's layout ever drifts from what the rows below assume.
        header = self._moto_report().split("\n", 1)[0]
        if tuple(header.split(",")) != REPORT_COLUMNS:
            raise RuntimeError(f"moto's credential report layout changed: {header}")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(REPORT_COLUMNS)
        writer.writerow(self._root_row())
        writer.writerows(self._user_row(user) for user in list(self.backend.users.values()))
        return out.getvalue()

    def _root_row(self) -> list[str]:
        root = self.root
        row = [
            ROOT_USER,
            f"arn:{self.backend.partition}:iam::{self.backend.account_id}:root",
            _fmt(root.created),
            "not_supported",
            _fmt(root.password_last_used, "no_information"),
            "not_supported",
            "not_supported",
            "true" if root.mfa_active else "false",
        ]
        for slot in (0, 1):
            if slot < len(root.keys):
                key = root.keys[slot]
                used = None if key.last_used is None else AccessKeyLastUsed(*key.last_used)
                row += ["true" if key.status == "Active" else "false", _fmt(key.created)]
                row += _last_used_columns(used)
            else:
                row += _NO_KEY
        return [*row, "false", "N/A", "false", "N/A"]

    def _user_row(self, user: Any) -> list[str]:
        # moto's row minus name and ARN: moto joins with "," unquoted, and names may contain commas;
        # the other 20 fields never do.
        tail = user.to_csv().rstrip("\n").split(",")[-20:]
        row = dict(zip(REPORT_COLUMNS, [user.name, user.arn, *tail], strict=True))
        if not user.password:  # AWS: N/A; moto: not_supported / the user's creation time
            row["password_last_used"] = row["password_last_changed"] = "N/A"
        for slot in (1, 2):
            key = user.access_keys[slot - 1] if len(user.access_keys) >= slot else None
            _, region, service = _last_used_columns(key.last_used if key is not None else None)
            row[f"access_key_{slot}_last_used_region"] = region
            row[f"access_key_{slot}_last_used_service"] = service
        return [row[column] for column in REPORT_COLUMNS]


# -- seeding ------------------------------------------------------------------------------------------


def _naive(when: datetime) -> datetime:
    """moto keeps naive UTC datetimes (its utcnow()); mixing in aware ones breaks its comparisons."""
    return when.astimezone(UTC).replace(tzinfo=None)


def _aware(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _iam_client(target: AwsSandbox | IAMClient) -> IAMClient:
    if isinstance(target, AwsSandbox):
        return target.client("iam")
    return target


def _backend_for_arn(arn: str) -> Any:
    _, partition, _, _, account_id, _ = arn.split(":", 5)
    if account_id not in iam_backends:
        raise RuntimeError(
            f"account {account_id} has no IAM backend in this process: the client must talk to a moto "
            "running here (AwsSandbox or mock_aws), not to another process or AWS"
        )
    return iam_backends[account_id][partition]


def _caller_backend(client: IAMClient) -> Any:
    # moto answers GetUser without a name with a placeholder user in the caller's account.
    return _backend_for_arn(client.get_user()["User"]["Arn"])


def seed_estate(
    target: AwsSandbox | IAMClient,
    *,
    users: int = 300,
    seed: int = 7,
    now: datetime | None = None,
    root_keys: int = 1,
    credential_report: ReportStyle = "aws",
) -> Estate:
    """Create ``users`` IAM users with 0-2 keys each, back-dated relative to ``now``, and return the
    truth read back from moto (about the whole account: users already there are included). Same
    ``seed`` and ``now`` on an empty account -> equal ``Estate``, key ids included.

    ``root_keys`` (0-2) gives the root user's report row that many keys (slot 1 active and in use,
    slot 2 inactive); it needs ``credential_report="aws"``: moto's own report has no root row.
    """
    if users < 0:
        raise ValueError("users must be >= 0")
    if not 0 <= root_keys <= 2:
        raise ValueError("root_keys must be 0, 1 or 2")
    if credential_report == "moto" and root_keys:
        raise ValueError("moto's own credential report has no <root_account> row: use root_keys=0")
    now = _aware(now or datetime.now(UTC)).replace(microsecond=0)
    # moto's report joins fields unquoted, so a comma in a name would shift its columns.
    planner = _Planner(seed, now, allow_commas=credential_report == "aws")
    plans = planner.users(users)
    client = _iam_client(target)

    if plans:
        try:
            first = client.create_user(UserName=plans[0].name, Path=plans[0].path)["User"]
        except client.exceptions.EntityAlreadyExistsException as error:
            raise RuntimeError("already seeded: reset the sandbox before seeding again") from error
        backend = _backend_for_arn(first["Arn"])
        if plans[0].name not in backend.users:
            raise RuntimeError("the user just created over HTTP is not in this process's moto")
    else:
        backend = _caller_backend(client)
    existing = {name.casefold() for name in backend.users if name != plans[0].name} if plans else set()
    clashes = [plan.name for plan in plans if plan.name.casefold() in existing]
    if clashes:
        raise RuntimeError(f"account already holds {clashes[:3]}...: reset the sandbox before seeding again")

    region = client.meta.region_name or "us-east-1"
    key_ids: set[str] = set(backend.access_keys)
    for index, plan in enumerate(plans):
        user = backend.users[plan.name] if index == 0 else backend.create_user(region, plan.name, plan.path)
        _apply_user(backend, planner, user, plan, key_ids)
    _tag_users(backend, plans, now)

    if credential_report == "aws":
        oldest = min((plan.created for plan in plans), default=now)
        root = planner.root(root_keys, oldest)
        backend.get_credential_report = _AwsCredentialReport(backend, root)
        _root_summary(backend, root)
        backend.update_account_password_policy(**SEEDED_PASSWORD_POLICY)
    elif isinstance(backend.__dict__.get("get_credential_report"), _AwsCredentialReport):
        del backend.get_credential_report  # back to moto's own
    return _read_backend(backend, now, seed)


# What a seeded account's password policy says: CIS would want 14 characters and 24 remembered passwords.
SEEDED_PASSWORD_POLICY: dict[str, Any] = {
    "allow_change_password": True,
    "hard_expiry": False,
    "max_password_age": 90,
    "minimum_password_length": 12,
    "password_reuse_prevention": 5,
    "require_lowercase_characters": True,
    "require_numbers": True,
    "require_symbols": True,
    "require_uppercase_characters": True,
}


def _root_summary(backend: Any, root: _RootPlan) -> None:
    """GetAccountSummary as AWS answers for this root user: moto fixes AccountMFAEnabled at 0 and has no
    AccountPasswordPresent, so the instance gets a subclass that says what the plan says. The root user's MFA is
    a hardware device: ListVirtualMFADevices lists none of the root's."""
    summary = backend.account_summary
    summary._account_mfa_enabled = int(root.mfa_active)
    summary._account_access_keys_present = int(bool(root.keys))
    base = type(summary)

    class _WithRootPassword(base):  # type: ignore[misc, valid-type]
        @property
        def summary_map(self) -> dict[str, Any]:
            return {**base.summary_map.fget(self), "AccountPasswordPresent": 1}

    summary.__class__ = _WithRootPassword


def _apply_user(backend: Any, planner: _Planner, user: Any, plan: _UserPlan, key_ids: set[str]) -> None:
    user.id = planner.user_id()  # moto's ids are random lowercase; AWS's look like this
    user.create_date = _naive(plan.created)  # before MFA: enabling copies it into the device
    if plan.password:
        backend.create_login_profile(plan.name, planner.secret(20))
        user.password_last_used = None if plan.password_last_used is None else _naive(plan.password_last_used)
    if plan.mfa_enabled is not None:
        device = backend.create_virtual_mfa_device(plan.name, "/")
        backend.enable_mfa_device(plan.name, device.serial_number, "123456", "654321")
        device.enable_date = _naive(plan.mfa_enabled)
        user.mfa_devices[device.serial_number].enable_date = _naive(plan.mfa_enabled)
    for key_plan in plan.keys:
        key = backend.create_access_key(plan.name, status=key_plan.status)
        # Re-key under a deterministic id (same format as moto's, so same account encoding).
        del backend.access_keys[key.access_key_id]
        key_id = planner.access_key_id(backend.account_id)
        while key_id in key_ids:
            key_id = planner.access_key_id(backend.account_id)
        key_ids.add(key_id)
        key.access_key_id = key_id
        key.secret_access_key = planner.secret(40)
        backend.access_keys[key_id] = key
        key.create_date = _naive(key_plan.created)
        if key_plan.last_used is not None:
            when, service, region = key_plan.last_used
            key.last_used = AccessKeyLastUsed(timestamp=_naive(when), service=service, region=region)


# -- owner and exception tags ---------------------------------------------------------------------------

EXCEPTION_TAG = "keyreport-exception"
_TEAMS = ("payments", "platform", "data", "identity", "finance")
# The exception tags an estate of 12 users or more carries, one user each (README, "Owners and exceptions"):
# name -> (tag suffix, value with {in_90}, {in_60}, {ago_10}, {in_730} and {key} filled in).
EXCEPTION_CASES: dict[str, tuple[str, str]] = {
    "valid_user": ("", "key-rotation-90-days until={in_90} by=security@example.com reason=vendor rotates quarterly"),
    "valid_key": ("-rotation", "IAM.3 key={key} until={in_60} by=security@example.com reason=SES SMTP credentials"),
    "expired": ("", "CIS-2.12 until={ago_10} by=alice@example.com reason=migration of the old pipeline"),
    "malformed": ("", "rotation please until=soon"),
    "no_expiry": ("", "CIS-1.13 by=bob@example.com reason=no end date given"),
    "over_long": ("-legacy", "all until={in_730} by=carol@example.com reason=legacy system"),
}  # fmt: skip


def _tag_users(backend: Any, plans: list[_UserPlan], now: datetime) -> None:
    """Owner tags on about half the users, a team on a third, an unrelated tag on some (it must never ship),
    and each of EXCEPTION_CASES on one user (estates of 12 users or more, where such a user exists).
    Deterministic and without the plan's random source: every other figure of an estate stays as it was."""
    for index, plan in enumerate(plans):
        tags = []
        if index % 2 == 0:
            tags.append({"Key": "owner", "Value": f"owner{index % 7}@example.com"})
        if index % 3 == 0:
            tags.append({"Key": "Team", "Value": _TEAMS[index % len(_TEAMS)]})
        if index % 5 == 0:
            tags.append({"Key": "cost-centre", "Value": f"cc-{index:04d}"})
        if tags:
            backend.tag_user(plan.name, tags)
    if len(plans) < 12:
        return
    days = {"in_90": 90, "in_60": 60, "ago_10": -10, "in_730": 730}
    dates = {name: (now + timedelta(days=offset)).date().isoformat() for name, offset in days.items()}
    taken: set[str] = set()
    old = now - timedelta(days=120)
    for case, (suffix, value) in EXCEPTION_CASES.items():
        wanted = 2 if case in {"valid_key", "expired"} else 1  # the expired one: one-active-key, a two-key user
        candidates = (p for p in plans if p.name not in taken and len(p.keys) == wanted)
        chosen = next((p for p in candidates if p.keys[0].status == "Active" and p.keys[0].created < old), None)
        if chosen is None:  # a small estate may have no such user: that case is left out
            continue
        taken.add(chosen.name)
        key = backend.users[chosen.name].access_keys[0].access_key_id
        text = value.format(key=f"{key[:4]}...{key[-4:]}", **dates)
        backend.tag_user(chosen.name, [{"Key": EXCEPTION_TAG + suffix, "Value": text}])


def exception_users(estate: Estate) -> dict[str, str]:
    """Which user carries each of EXCEPTION_CASES (case -> user name), read back from the estate's tags."""
    found: dict[str, str] = {}
    for user in estate.users:
        for key, value in user.tags:
            if key.startswith(EXCEPTION_TAG):
                case = next(c for c, (suffix, text) in EXCEPTION_CASES.items() if key == EXCEPTION_TAG + suffix
                            and value.split()[0] == text.split()[0])  # fmt: skip
                found[case] = user.name
    return found


# -- reading back -------------------------------------------------------------------------------------


def read_estate(target: AwsSandbox | IAMClient, *, now: datetime | None = None) -> Estate:
    """The truth about the account ``target`` reaches, read from moto's objects in this process."""
    backend = _caller_backend(_iam_client(target))
    return _read_backend(backend, _aware(now or datetime.now(UTC)).replace(microsecond=0), None)


def _last_used(last_used: Any) -> tuple[datetime | None, str | None, str | None]:
    if isinstance(last_used, AccessKeyLastUsed):
        return _aware(last_used.timestamp), last_used.service, last_used.region
    if isinstance(last_used, datetime):
        return _aware(last_used), None, None
    return None, None, None


def _read_backend(backend: Any, now: datetime, seed: int | None) -> Estate:
    users: list[EstateUser] = []
    keys: list[EstateKey] = []
    report = backend.__dict__.get("get_credential_report")
    if isinstance(report, _AwsCredentialReport):
        root_arn = f"arn:{backend.partition}:iam::{backend.account_id}:root"
        for slot, plan in enumerate(report.root.keys, start=1):
            used = plan.last_used
            keys.append(
                EstateKey(
                    user_name=ROOT_USER,
                    user_arn=root_arn,
                    access_key_id=f"root:{slot}",
                    slot=slot,
                    status=plan.status,
                    create_date=plan.created,
                    last_used_date=None if used is None else used[0],
                    last_used_service=None if used is None else used[1],
                    last_used_region=None if used is None else used[2],
                    password_enabled=None,
                    mfa_active=report.root.mfa_active,
                )
            )
    for user in list(backend.users.values()):
        password = bool(user.password)
        mfa = bool(user.mfa_devices)
        users.append(
            EstateUser(
                name=user.name,
                arn=user.arn,
                path=user.path,
                user_id=user.id,
                create_date=_aware(user.create_date),
                password_enabled=password,
                password_last_used=None if user.password_last_used is None else _aware(user.password_last_used),
                mfa_active=mfa,
                access_key_ids=tuple(key.access_key_id for key in user.access_keys),
                tags=tuple((tag["Key"], tag["Value"]) for tag in backend.list_user_tags(user.name)),
            )
        )
        for slot, key in enumerate(user.access_keys, start=1):
            when, service, region = _last_used(key.last_used)
            keys.append(
                EstateKey(
                    user_name=user.name,
                    user_arn=user.arn,
                    access_key_id=key.access_key_id,
                    slot=slot,
                    status=key.status,
                    create_date=_aware(key.create_date),
                    last_used_date=when,
                    last_used_service=service,
                    last_used_region=region,
                    password_enabled=password,
                    mfa_active=mfa,
                )
            )
    report_style: ReportStyle = "aws" if isinstance(report, _AwsCredentialReport) else "moto"
    root = None
    if isinstance(report, _AwsCredentialReport):
        summary = backend.account_summary.summary_map
        uses = [plan.last_used[0] for plan in report.root.keys if plan.last_used is not None]
        mfa = bool(summary["AccountMFAEnabled"])
        root = EstateRoot(
            created=report.root.created,
            password=bool(summary.get("AccountPasswordPresent")),
            mfa=report.root.mfa_active,
            hardware_mfa=mfa and not _root_virtual_mfa(backend),
            last_activity=max([*uses, *([report.root.password_last_used] if report.root.password_last_used else [])],
                              default=None),
        )  # fmt: skip
    return Estate(
        backend.account_id, now, tuple(users), tuple(keys), report_style, seed, root, _password_policy(backend)
    )


def _root_virtual_mfa(backend: Any) -> bool:
    root_arn = f"arn:{backend.partition}:iam::{backend.account_id}:root"
    return any(getattr(device.user, "arn", None) == root_arn for device in backend.virtual_mfa_devices.values())


def _password_policy(backend: Any) -> PasswordPolicy:
    policy = backend.account_password_policy
    if not policy:
        return PasswordPolicy(present=False)
    return PasswordPolicy(
        present=True,
        minimum_length=policy.minimum_password_length,
        reuse_prevention=policy.password_reuse_prevention or 0,
        require_symbols=policy.require_symbols,
        require_numbers=policy.require_numbers,
        require_uppercase=policy.require_uppercase_characters,
        require_lowercase=policy.require_lowercase_characters,
        max_age_days=policy.max_password_age or None,
    )


# -- other seeds --------------------------------------------------------------------------------------


def seed_client_secret(sandbox: AwsSandbox, name: str, value: str) -> str:
    """A Secrets Manager secret whose SecretString is ``value`` itself; returns its ARN.
    Seeding the same name again stores ``value`` as the new current version."""
    client = sandbox.client("secretsmanager")
    try:
        return client.create_secret(Name=name, SecretString=value)["ARN"]
    except client.exceptions.ResourceExistsException:
        return client.put_secret_value(SecretId=name, SecretString=value)["ARN"]
