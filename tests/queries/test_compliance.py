"""The compliance map against the benchmarks' own ids, its loader's refusals, and everything that names a control.

The facts below were read from the benchmarks' machine-readable sources (docs/queries.md, "Compliance mappings"):
Prowler's compliance/aws/cis_5.0_aws.json and cis_6.0_aws.json (requirement ids and their checks), and the AWS
Security Hub CSPM user guide's IAM controls page (each control's "Related requirements: CIS AWS Foundations
Benchmark v5.0.0/1.n"). Written out here on purpose: this is the independent side of the map.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from keyreport import queries
from keyreport.queries import compliance
from scripts import arm, render_compliance

V5, V6, HUB = "CIS AWS Foundations v5.0", "CIS AWS Foundations v6.0", "AWS Security Hub"
# check -> (CIS v5.0, CIS v6.0, Security Hub), with the benchmark's own wording of it.
FACTS: dict[str, tuple[str | None, str | None, str | None]] = {
    "root-access-key": ("1.3", "2.3", "IAM.4"),  # Ensure no 'root' user account access key exists
    "root-mfa": ("1.4", "2.4", "IAM.9"),  # Ensure MFA is enabled for the 'root' user account
    "root-hardware-mfa": ("1.5", "2.5", "IAM.6"),  # Ensure hardware MFA is enabled for the 'root' user account
    "root-recent-use": ("1.6", "2.6", None),  # Eliminate use of the 'root' user for administrative and daily tasks
    "password-policy-length": ("1.7", "2.7", "IAM.15"),  # ... requires minimum length of 14 or greater
    "password-policy-reuse": ("1.8", "2.8", "IAM.16"),  # Ensure IAM password policy prevents password reuse
    "password-policy-strong": (None, None, "IAM.7"),  # Password policies ... should have strong configurations
    "console-mfa": ("1.9", "2.9", "IAM.5"),  # ... MFA is enabled for all IAM users that have a console password
    "setup-key": ("1.10", "2.10", None),  # Do not create access keys during initial setup for IAM users with a ...
    "unused-45-days": ("1.11", "2.11", "IAM.22"),  # Ensure credentials unused for 45 days or more are disabled
    "one-active-key": ("1.12", "2.12", None),  # Ensure there is only one active access key for any single IAM user
    "key-rotation-90-days": ("1.13", "2.13", "IAM.3"),  # Ensure access keys are rotated every 90 days or less
    "unused-90-days": (None, None, "IAM.8"),  # Unused IAM user credentials should be removed
}
# Security Hub's AWS Foundational Security Best Practices standard holds these IAM controls (and IAM.1, .2, .21).
FSBP_STANDARD = {"IAM.3", "IAM.4", "IAM.5", "IAM.6", "IAM.7", "IAM.8"}
# MITRE ATT&CK (enterprise): technique -> the tactics it belongs to, as Sentinel names them.
ATTACK = {
    "T1078.004": {"InitialAccess", "Persistence", "PrivilegeEscalation", "DefenseEvasion"},  # Valid Accounts: Cloud
    "T1098.001": {"Persistence", "PrivilegeEscalation"},  # Account Manipulation: Additional Cloud Credentials
    "T1110": {"CredentialAccess"},  # Brute Force
    "T1110.001": {"CredentialAccess"},  # Password Guessing
    "T1110.003": {"CredentialAccess"},  # Password Spraying
    "T1110.004": {"CredentialAccess"},  # Credential Stuffing
}
MAP = compliance.load()


def test_every_check_carries_exactly_the_benchmarks_ids() -> None:
    own = [control.id for control in MAP.controls.values() if control.resource == compliance.OWN_RESOURCE]
    assert own == ["exception-valid"], "keyreport's own checks name no benchmark"
    assert not MAP.controls["exception-valid"].benchmarks
    assert [control_id for control_id in MAP.controls if control_id not in own] == list(FACTS)
    for control_id, (v5, v6, hub) in FACTS.items():
        expected = {name: value for name, value in ((V5, v5), (V6, v6), (HUB, hub)) if value is not None}
        assert dict(MAP.controls[control_id].benchmarks) == expected, control_id


def test_cis_v5_is_v6_one_section_down_and_never_the_v4_numbering() -> None:
    # v5.0 removed the security-questions control: its credential ids are v4.0's minus one, v6.0's in section 1.
    for control in MAP.controls.values():
        v5, v6 = control.benchmarks.get(V5), control.benchmarks.get(V6)
        assert (v5 is None) == (v6 is None), control.id
        if v5 and v6:
            assert v5.split(".")[1] == v6.split(".")[1] and v5.startswith("1.") and v6.startswith("2."), control.id
    assert MAP.ids(V5)["root-access-key"] == "1.3" and MAP.ids(V5)["key-rotation-90-days"] == "1.13"


def test_the_text_form_names_every_id_in_benchmark_order() -> None:
    assert MAP.controls["unused-45-days"].text == "CIS v5.0 1.11, CIS v6.0 2.11, Security Hub IAM.22"
    assert MAP.controls["unused-90-days"].text == "Security Hub IAM.8"


def test_the_security_hub_benchmark_says_which_ids_are_fsbp() -> None:
    [hub] = [b for b in MAP.benchmarks if b.name == HUB]
    hub_ids = set(MAP.ids(HUB).values())
    in_fsbp = {hub_id for hub_id in hub_ids if hub_id in FSBP_STANDARD}
    assert in_fsbp == {"IAM.3", "IAM.4", "IAM.5", "IAM.6", "IAM.7", "IAM.8"}
    for outside in sorted(hub_ids - FSBP_STANDARD):
        assert outside in hub.source, f"the source note must say {outside} is not an FSBP control"


def test_severities_follow_security_hub_with_critical_as_high() -> None:
    assert {c.id for c in MAP.controls.values() if c.severity == "High"} == {
        "root-access-key", "root-mfa", "root-hardware-mfa"
    }  # fmt: skip
    assert MAP.controls["password-policy-reuse"].severity == "Low"  # IAM.16 is Low


@pytest.mark.parametrize("control_id", list(FACTS))
def test_mitre_techniques_exist_and_tactics_belong_to_them(control_id: str) -> None:
    mitre = MAP.controls[control_id].mitre
    assert set(mitre.techniques) <= set(ATTACK), mitre.techniques
    allowed = set().union(*(ATTACK[technique] for technique in mitre.techniques))
    assert set(mitre.tactics) <= allowed, (control_id, mitre.tactics, allowed)


# -- the loader refuses a bad map ------------------------------------------------------------------------

GOOD = json.loads((arm.ROOT / "queries" / "compliance.json").read_text())


def broken(change: str) -> str:
    document = json.loads(json.dumps(GOOD))
    control = document["controls"][0]
    if change == "v4-style id":
        control["benchmarks"][V5] = "1.14.2"
    elif change == "unknown benchmark":
        control["benchmarks"]["CIS AWS Foundations v4.0"] = "1.4"
    elif change == "critical":
        control["severity"] = "Critical"
    elif change == "technique":
        control["mitre"]["techniques"] = ["T1078.4"]
    elif change == "tactic":
        control["mitre"]["tactics"] = ["Privilege Escalation"]
    elif change == "duplicate id":
        document["controls"][1]["benchmarks"][V6] = control["benchmarks"][V6]
    elif change == "extra field":
        control["owner"] = "me"
    elif change == "no benchmarks":
        control["benchmarks"] = {}
    elif change == "resource":
        control["resource"] = "bucket"
    elif change == "own check with ids":
        control["resource"] = "exception"
    return json.dumps(document)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("v4-style id", r"controls\[0\] \(root-access-key\): CIS AWS Foundations v5.0 id '1.14.2' does not match"),
        ("unknown benchmark", r"unknown benchmark 'CIS AWS Foundations v4.0'"),
        ("critical", r"severity 'Critical' is not one of High, Medium, Low, Informational"),
        ("technique", r"mitre techniques must be ATT&CK ids"),
        ("tactic", r"mitre tactics must be Sentinel tactic names"),
        ("duplicate id", r"CIS v6.0 2.3 is claimed by root-access-key and root-mfa"),
        ("extra field", r"unknown field 'owner'"),
        ("no benchmarks", r"benchmarks must name at least one benchmark's id"),
        ("resource", r"resource 'bucket' is not one of"),
        ("own check with ids", r"a check of resource 'exception' is keyreport's own: benchmarks must be \{\}"),
    ],
)
def test_a_malformed_map_is_refused_naming_the_entry(change: str, message: str) -> None:
    with pytest.raises(queries.LibraryError, match=message):
        compliance.parse(broken(change))


def test_a_map_that_is_not_json_is_refused() -> None:
    with pytest.raises(queries.LibraryError, match=r"compliance.json: not JSON"):
        compliance.parse("{")


# -- everything that names a control takes it from the map ---------------------------------------------

_NAMED = re.compile(r"\b(CIS v5\.0|CIS v6\.0|Security Hub|FSBP) ((?:IAM\.|\d+\.)\d+)")
LABELS = {"CIS v5.0": V5, "CIS v6.0": V6, "Security Hub": HUB}


def shipped_texts() -> dict[str, str]:
    root = arm.ROOT
    paths = [
        *root.glob("queries/*.kql"), *root.glob("queries/functions/*.kql"), *root.glob("azure/sentinel/**/*.yaml"),
        root / "queries" / "workbook.json", *root.glob("azure/*.json"), *root.glob("azure/sentinel/**/*.json"),
        *root.glob("docs/*.md"), root / "README.md",
        *root.glob("sandbox/*.py"),
    ]  # fmt: skip
    return {str(path.relative_to(root)): path.read_text(encoding="utf-8") for path in paths}


@pytest.mark.parametrize("where", sorted(shipped_texts()))
def test_every_benchmark_id_written_anywhere_is_one_of_the_map(where: str) -> None:
    text = shipped_texts()[where]
    for label, benchmark_id in _NAMED.findall(text):
        assert label != "FSBP", f"{where}: 'FSBP {benchmark_id}': Security Hub ids are written 'Security Hub IAM.n'"
        assert benchmark_id in MAP.ids(LABELS[label]).values(), f"{where}: {label} {benchmark_id} is not in the map"


def test_the_findings_check_exactly_the_map() -> None:
    functions = queries.functions()
    judged = set(re.findall(r'ControlId = "([a-z0-9-]+)"', functions["KeyReport_FindingSnapshots"].text))
    assert judged <= set(MAP.controls)
    assert "Control = " not in functions["KeyReport_FindingSnapshots"].text  # benchmark ids only via the map
    for query in queries.library().values():
        assert set(query.control_ids) <= judged, query.id


def test_rendered_files_are_fresh() -> None:
    for path, text in render_compliance.rendered().items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `make render`"


def test_the_controls_function_is_the_map() -> None:
    text = render_compliance.controls_function(MAP)
    for control in MAP.controls.values():
        assert f'"{control.id}", "{control.text}", "{control.severity}"' in text


def test_the_docs_table_lists_every_check_with_its_ids() -> None:
    table = render_compliance.controls_table(MAP)
    assert "| `root-access-key` | 1.3 | 2.3 | IAM.4 | High |" in table
    assert "| `unused-90-days` |  |  | IAM.8 | Medium |" in table


def test_missing_docs_markers_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="markers"):
        render_compliance.docs_text("# no markers here\n", MAP)


def test_the_docs_check_table_names_each_checks_ids_as_the_map_does() -> None:
    text = (arm.ROOT / "docs" / "queries.md").read_text(encoding="utf-8")
    section = text.split("### What keyreport checks", 1)[1].split("\n\n", 3)[2]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| `")]
    assert [row[0].strip("| `") for row in rows] == list(MAP.controls)
    for row in rows:
        control = MAP.controls[row[0].strip("| `")]
        written = [part.strip() for part in row[1].split("/")]
        expected = [control.benchmarks.get(name, "—") for name in (V5, V6, HUB)]
        assert written == expected, control.id
