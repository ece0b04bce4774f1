"""The keyreport-exception grammar: every branch, against the shipped compliance map."""

from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyreport.exceptions import MAX_JSON_CHARS, ExceptionTag, as_json, control_aliases, is_exception_tag, parse
from keyreport.queries import compliance

TODAY = date(2026, 12, 7)
TAG = "keyreport-exception"
FULL_KEY = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example id


def parsed(value: str, tag: str = TAG, *, max_days: int = 365, keys: tuple[str, ...] | None = None) -> ExceptionTag:
    return parse(tag, value, today=TODAY, max_days=max_days, keys=keys)


def test_a_valid_user_level_exception() -> None:
    found = parsed("CIS-2.13 until=2027-03-31 by=alice@example.com reason=SES SMTP credentials")
    assert found == ExceptionTag(
        TAG,
        "CIS-2.13 until=2027-03-31 by=alice@example.com reason=SES SMTP credentials",
        "key-rotation-90-days",
        "",
        "2027-03-31",
        "alice@example.com",
        "SES SMTP credentials",
        "",
    )
    assert found.valid and list(found.fields()) == [
        "Tag", "Value", "Control", "Key", "Until", "ApprovedBy", "Reason", "Problem"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("control", "resolved"),
    [
        ("key-rotation-90-days", "key-rotation-90-days"),
        ("KEY-ROTATION-90-DAYS", "key-rotation-90-days"),
        ("CIS-1.13", "key-rotation-90-days"),  # v5.0
        ("cis-2.13", "key-rotation-90-days"),  # v6.0
        ("IAM.3", "key-rotation-90-days"),
        ("iam.8", "unused-90-days"),
        ("CIS-1.12", "one-active-key"),
        ("all", "all"),
        ("ALL", "all"),
    ],
)
def test_a_control_is_named_by_its_id_a_cis_id_a_security_hub_id_or_all(control: str, resolved: str) -> None:
    assert parsed(f"{control} until=2027-01-01 by=a reason=r").control == resolved


@pytest.mark.parametrize("control", ["CIS-9.99", "IAM.99", "1.13", "rotation", "CIS2.13"])
def test_an_unknown_control_is_a_problem(control: str) -> None:
    found = parsed(f"{control} until=2027-01-01 by=a reason=r")
    assert (found.control, found.problem) == ("", found.problem) and "unknown control" in found.problem


def test_a_name_two_controls_claim_is_ambiguous() -> None:
    shipped = compliance.load()
    aliases = control_aliases(shipped)
    assert "" not in aliases.values(), "the shipped map names every control unambiguously"
    doubled = {**aliases, "iam.3": ""}  # as control_aliases marks a name two controls claim
    found = parse(TAG, "IAM.3 until=2027-01-01 by=a reason=r", today=TODAY, max_days=365, aliases=doubled)
    assert "ambiguous control" in found.problem and not found.valid


def test_tokens_come_in_any_order_and_reason_takes_the_rest() -> None:
    found = parsed(
        "IAM.3 by=bob Until=2027-02-01 key=AKIA...WXYZ reason=until=later by=me key=x", keys=("AKIA...WXYZ",)
    )
    assert (found.key, found.until, found.approved_by) == ("AKIA...WXYZ", "2027-02-01", "bob")
    assert found.reason == "until=later by=me key=x" and found.valid


def test_a_key_level_exception_names_a_current_key_by_its_masked_id() -> None:
    value = "key-rotation-90-days key=AKIA...WXYZ until=2027-01-01 by=a reason=r"
    assert parsed(value, keys=("AKIA...WXYZ", "AKIA...ABCD")).valid
    assert parsed(value).valid  # keys unknown: not checked here
    rotated = parsed(value, keys=("AKIA...QQQQ",))  # the key was replaced: the new one is not covered
    assert not rotated.valid and "no current key" in rotated.problem and rotated.key == "AKIA...WXYZ"
    twins = parsed(value, keys=("AKIA...WXYZ", "AKIA...WXYZ"))
    assert "cannot tell them apart" in twins.problem


@pytest.mark.parametrize("key", ["AKIA..WXYZ", "akia...wxyz", "AKIA...WXYZ1", "WXYZ", ""])
def test_a_key_not_in_masked_form_is_a_problem(key: str) -> None:
    found = parsed(f"IAM.3 key={key} until=2027-01-01 by=a reason=r")
    assert "not a masked key id" in found.problem and found.key == ""


def test_a_full_key_id_never_leaves_the_function() -> None:
    found = parsed(f"IAM.3 key={FULL_KEY} until=2027-01-01 by=a reason=rotating {FULL_KEY} soon")
    assert "never the full key id" in found.problem
    shipped = json.dumps(found.fields())
    assert FULL_KEY not in shipped and FULL_KEY[4:16] not in shipped
    assert "AKIA...MPLE" in found.value and found.key == ""
    anywhere = parse(f"keyreport-exception-{FULL_KEY}", f"{FULL_KEY} by={FULL_KEY}", today=TODAY, max_days=365)
    assert FULL_KEY not in json.dumps(anywhere.fields())


def test_a_key_applies_only_to_checks_of_single_keys() -> None:
    assert (
        "not a check of single keys" in parsed("one-active-key key=AKIA...WXYZ until=2027-01-01 by=a reason=r").problem
    )
    assert parsed("unused-45-days key=AKIA...WXYZ until=2027-01-01 by=a reason=r").valid  # credential: a key too
    assert parsed("all key=AKIA...WXYZ until=2027-01-01 by=a reason=r").valid


def test_an_exception_without_expiry_is_refused() -> None:
    found = parsed("IAM.3 by=a reason=forever")
    assert found.problem == "no expiry (until=YYYY-MM-DD)" and found.control == "key-rotation-90-days"
    assert "no expiry" in parsed("IAM.3 until= by=a reason=r").problem


@pytest.mark.parametrize("until", ["2027-02-30", "2027-13-01", "27-01-01", "2027/01/01", "tomorrow", "2027-1-1"])
def test_an_expiry_that_is_no_date_is_a_problem(until: str) -> None:
    found = parsed(f"IAM.3 until={until} by=a reason=r")
    assert "is not a date" in found.problem and found.until == ""


def test_an_exception_longer_than_the_maximum_is_refused_naming_both_numbers() -> None:
    assert parsed("IAM.3 until=2027-12-07 by=a reason=r").valid  # 365 days: the maximum itself is allowed
    found = parsed("IAM.3 until=2027-12-08 by=a reason=r")
    assert found.problem == "over-long: until= is 366 days away, more than the 365 allowed"
    assert found.until == "2027-12-08"
    assert "more than the 30 allowed" in parsed("IAM.3 until=2027-01-07 by=a reason=r", max_days=30).problem


def test_a_past_expiry_is_no_problem_here() -> None:
    found = parsed("IAM.3 until=2025-01-01 by=a reason=r")
    assert found.valid and found.until == "2025-01-01"  # the workspace marks it expired


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("IAM.3 until=2027-01-01 reason=r", "no approver (by=)"),
        ("IAM.3 until=2027-01-01 by= reason=r", "no approver (by=)"),
        ("IAM.3 until=2027-01-01 by=a", "no reason (reason=, last)"),
        ("IAM.3 until=2027-01-01 by=a reason=   ", "no reason (reason=, last)"),
        ("", "empty value"),
        ("   ", "empty value"),
        ("until=2027-01-01 IAM.3 by=a reason=r", "malformed: no control first"),
        ("IAM.3 until=2027-01-01 until=2027-01-02 by=a reason=r", "malformed: until= given twice"),
        ("IAM.3 expires=2027-01-01 by=a reason=r", "malformed: unexpected 'expires=2027-01-01'"),
        ("IAM.3 IAM.4 until=2027-01-01 by=a reason=r", "malformed: unexpected 'IAM.4'"),
        ("IAM.3 until=2027-01-01 by=a reasons=r", "malformed: unexpected 'reasons=r'"),
    ],
)
def test_a_malformed_value_is_reported(value: str, problem: str) -> None:
    found = parsed(value)
    assert problem in found.problem and found.value == value


def test_several_problems_are_all_said() -> None:
    found = parsed("nonsense")
    assert found.problem.split("; ") == [
        "unknown control 'nonsense': a control id, CIS-<id>, IAM.<n> or all",
        "no expiry (until=YYYY-MM-DD)",
        "no approver (by=)",
        "no reason (reason=, last)",
    ]


def test_tag_keys_of_keyreports_prefix_are_exceptions_and_a_wrong_one_is_reported() -> None:
    value = "IAM.3 until=2027-01-01 by=a reason=r"
    assert parsed(value, "Keyreport-Exception-SES").valid
    assert parsed(value, "keyreport-exception-2").valid
    assert is_exception_tag("KEYREPORT-exceptions") and is_exception_tag("keyreport-owner")
    assert not is_exception_tag("owner") and not is_exception_tag("x-keyreport-exception")
    found = parsed(value, "keyreport-exceptions")
    assert "is not keyreport-exception or keyreport-exception-<suffix>" in found.problem
    assert "not keyreport-exception" in parsed(value, "keyreport-exception-").problem


def test_the_column_stays_within_the_data_collectors_field_limit() -> None:
    many = [parsed("IAM.3 until=2027-01-01 by=" + "a" * 100 + " reason=" + "r" * 120, f"{TAG}-{n}") for n in range(50)]
    text = as_json(many)
    assert len(text) <= MAX_JSON_CHARS
    objects = json.loads(text)
    assert objects[-1]["Problem"].endswith("more exception tags not shown") and len(objects) < 50
    assert as_json([]) == "[]" and json.loads(as_json(many[:3])) == [item.fields() for item in many[:3]]


@given(st.text(alphabet=st.sampled_from("AKIBCDXYZ0123456789 ._:/=+-@abc"), max_size=256))
def test_any_value_parses_to_a_shippable_exception_without_a_full_key_id(value: str) -> None:
    found = parsed(value)
    assert isinstance(found.problem, str) and (found.valid or found.problem)
    for text in found.fields().values():
        assert not any(len(word) >= 16 and word.startswith("A") and word.isalnum() and word.isupper()
                       for word in text.replace("=", " ").split())  # fmt: skip


def test_a_full_key_id_glued_to_other_text_is_masked_too() -> None:
    found = parsed(f"IAM.3 until=2027-01-01 by=a reason=was{FULL_KEY}, now rotated")
    assert FULL_KEY not in json.dumps(found.fields()) and "wasAKIA...MPLE" in found.reason
