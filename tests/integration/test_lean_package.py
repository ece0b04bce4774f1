"""A package built for one sink (`make package SINK=...`) holds what that sink's code paths import.

The check event and a whole run go through the real handler in a fresh interpreter in which the
distributions that package leaves out (scripts/package_lambda.py `excluded`) cannot be imported: the other
sink's SDK and the CLI's extras. A configuration for the sink a package was not built for is a
configuration error naming the fix, not an ImportError.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from scripts.package_lambda import excluded
from tests.integration.conftest import World

# The import name of each distribution a package may leave out.
MODULES = {
    "azure-monitor-query": "azure.monitor.query",
    "tqdm": "tqdm",
    "azure-keyvault-secrets": "azure.keyvault",
    "azure-monitor-ingestion": "azure.monitor.ingestion",
}

CHILD = """
import importlib.abc, json, sys
blocked = tuple(sys.argv[1].split(","))

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in blocked):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent())
from keyreport.errors import ConfigError
from keyreport.handler import lambda_handler
from sandbox.lambda_context import LocalLambdaContext
try:
    checked = lambda_handler({"keyreport": "check"}, LocalLambdaContext(120))
    ran = lambda_handler({}, LocalLambdaContext(120))
except ConfigError as error:
    print(json.dumps({"config_error": str(error)}))
else:
    print(json.dumps({"passed": checked["passed"], "status": ran["Status"], "shipped": ran["RecordsShipped"],
                      "loaded": sorted(m for m in sys.modules if m.startswith(blocked))}))
"""


def run_without(world: World, sink: str, built_for: str) -> dict[str, object]:
    blocked = ",".join(MODULES[name] for name in sorted(excluded(built_for)))
    env = world.stack.aws.env(os.environ) | world.stack.env(sink=sink)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, blocked], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("sink", ["logs_ingestion", "data_collector"])
def test_the_package_for_a_sink_checks_and_runs_without_what_it_leaves_out(world: World, sink: str) -> None:
    result = run_without(world, sink, built_for=sink)
    assert result == {"passed": True, "status": "ok", "shipped": world.estate.key_count, "loaded": []}


def test_a_package_built_for_the_other_sink_is_a_configuration_error_with_the_fix(world: World) -> None:
    result = run_without(world, "data_collector", built_for="logs_ingestion")
    said = str(result["config_error"])
    assert "data_collector needs the Python package 'azure.keyvault'" in said
    assert "make package SINK=data_collector" in said
