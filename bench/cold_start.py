"""Cold start of the Lambda handler per sink and sign-in mode: import time, and which modules get loaded.

    python -m bench.cold_start --repeat 7

Each probe is a fresh interpreter (as a new Lambda container) that imports keyreport.handler and builds the
sink of its configuration the way the handler does (Settings.from_env -> Wiring -> sink), without calling
anything: the credential and the workspace key are fetched on first use. It reports the milliseconds of
the import and of the build, and the modules loaded. Interpreter start-up itself is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import trustme

APP = {
    "AZURE_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "AZURE_CLIENT_ID": "0a1b2c3d-1111-2222-3333-444455556666",
}
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyreport-"
AUTH_ENV: dict[str, dict[str, str]] = {
    "federated": APP,
    "kms": APP | {"KEYREPORT_KMS_KEY_ID": "alias/keyreport", "KEYREPORT_KMS_CERTIFICATE": "<certificate>"},
    "certificate": APP | {"KEYREPORT_AZURE_CERTIFICATE_ARN": ARN + "cert"},
    "secret": APP | {"KEYREPORT_AZURE_CLIENT_SECRET_ARN": ARN + "secret"},
    "default": {},
}
SINK_ENV: dict[str, dict[str, str]] = {
    "stdout": {},
    "data_collector": {
        "KEYREPORT_WORKSPACE_ID": "0b9b4a3e-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
        "KEYREPORT_KEYVAULT_URL": "https://keyreport.vault.azure.net",
        "KEYREPORT_WORKSPACE_KEY_SECRET": "la-workspace-key",
    },
    "logs_ingestion": {
        "KEYREPORT_DCE_ENDPOINT": "https://keyreport-abcd.eastus-1.ingest.monitor.azure.com",
        "KEYREPORT_DCR_ID": "dcr-0123456789abcdef0123456789abcdef",
    },
}
AWS_ENV = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
FINGERPRINT = {"KEYREPORT_FINGERPRINT_SECRET_ARN": ARN + "fingerprint"}  # every sink that ships needs it

# Runs in the fresh interpreter: times the import and the build, lists the modules loaded.
PROBE = """
import json, sys, time
started = time.perf_counter()
import boto3
from keyreport import handler
from keyreport.settings import Settings
imported = time.perf_counter()
settings = Settings.from_env()
wiring = handler.warm_wiring(settings, boto3.Session())
wiring.sink
built = time.perf_counter()
print(json.dumps({"import_ms": (imported - started) * 1000, "build_ms": (built - imported) * 1000,
                  "modules": sorted(sys.modules)}))
"""


@dataclass(frozen=True)
class Mode:
    sink: str
    auth: str

    def env(self, certificate: str) -> dict[str, str]:
        auth = {name: value.replace("<certificate>", certificate) for name, value in AUTH_ENV[self.auth].items()}
        shipping = FINGERPRINT if self.sink != "stdout" else {}
        return (
            AWS_ENV
            | SINK_ENV[self.sink]
            | shipping
            | auth
            | {"KEYREPORT_SINK": self.sink, "KEYREPORT_AZURE_AUTH": self.auth}
        )


# The packages worth knowing about at cold start: what each sink and mode needs, and what it must not load.
PACKAGES = ("azure.core", "azure.identity", "msal", "azure.keyvault", "azure.monitor.ingestion", "cryptography")


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


MODES = [Mode("stdout", "default")] + [
    Mode(sink, auth) for sink in ("data_collector", "logs_ingestion") for auth in AUTH_ENV
]


def throwaway_certificate() -> str:
    """A self-signed certificate (PEM) for the kms mode's settings; its key is thrown away."""
    return trustme.CA().cert_pem.bytes().decode()


def probe(mode: Mode, certificate: str) -> dict[str, Any]:
    """One cold start of `mode` in a fresh interpreter, with only this mode's environment."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("KEYREPORT_", "AZURE_"))}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env | mode.env(certificate), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode}: {done.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    certificate = throwaway_certificate()
    for mode in MODES:
        runs = [probe(mode, certificate) for _ in range(args.repeat)]
        total = [run["import_ms"] + run["build_ms"] for run in runs]
        loaded = [package for package in PACKAGES if any(_within(name, package) for name in runs[0]["modules"])]
        print(
            json.dumps(
                {
                    "sink": mode.sink,
                    "auth": mode.auth,
                    "median_ms": round(statistics.median(total)),
                    "min_ms": round(min(total)),
                    "max_ms": round(max(total)),
                    "import_ms": round(statistics.median(run["import_ms"] for run in runs)),
                    "modules": len(runs[0]["modules"]),
                    "loaded": loaded,
                }
            )
        )


if __name__ == "__main__":
    main()
