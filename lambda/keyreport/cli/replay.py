"""`keyreport replay`: re-ship the batches parked in KEYREPORT_SPILL_BUCKET."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from keyreport.cli.common import EXIT_OK, EXIT_RUN_FAILED, add_run_options, aws_session, start
from keyreport.cli.progress import CountingSink, CountingSpill, Progress, wanted
from keyreport.errors import ConfigError
from keyreport.settings import Settings
from keyreport.spill.replay import replay as replay_spilled
from keyreport.wiring import Wiring

if TYPE_CHECKING:
    from keyreport.cli.common import Commands


def add_to(commands: Commands) -> None:
    command = commands.add_parser("replay", help="re-ship batches parked in KEYREPORT_SPILL_BUCKET")
    add_run_options(command)
    command.set_defaults(handler=replay)


def replay(args: argparse.Namespace) -> int:
    deadline = start(args)
    wiring = Wiring(Settings.from_env(), aws_session())
    if wiring.spill is None:
        raise ConfigError(["KEYREPORT_SPILL_BUCKET is required for keyreport replay"])
    progress = Progress(wanted(args), "spilled batches", "batch")
    try:
        outcome = replay_spilled(CountingSpill(wiring.spill, progress), CountingSink(wiring.sink, progress), deadline)
    finally:
        progress.close()
    print(
        f"{outcome.objects} spilled batch(es): {outcome.delivered_objects} delivered and deleted "
        f"({outcome.delivered_rows} rows), {len(outcome.kept)} kept",
        file=sys.stderr,
    )
    for problem in outcome.errors:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_OK if outcome.succeeded else EXIT_RUN_FAILED
