"""`keyreport replay`: re-ship the batches parked in KEYREPORT_SPILL_BUCKET."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from keyreport.cli.common import EXIT_OK, EXIT_RUN_FAILED, RUN_VARIABLES, add_run_options, aws_session, help_for, start
from keyreport.cli.progress import CountingSink, CountingSpill, Progress, wanted
from keyreport.errors import ConfigError
from keyreport.settings import Settings, StdoutSettings
from keyreport.spill.replay import replay as replay_spilled
from keyreport.wiring import Wiring

if TYPE_CHECKING:
    from keyreport.cli.common import Commands


def add_to(commands: Commands) -> None:
    command = commands.add_parser(
        "replay",
        help="re-ship batches parked in KEYREPORT_SPILL_BUCKET",
        **help_for(
            "Re-ships the batches a run parked in KEYREPORT_SPILL_BUCKET: each object's MAC and content are "
            "checked first (a forged or damaged one goes to keyreport/quarantine/), and an object is deleted only "
            "once all its rows arrived. With KEYREPORT_SINK=stdout it only prints the rows: nothing is deleted.",
            "0 every batch delivered, 1 a batch kept or rejected, 2 configuration, 130 interrupted",
            RUN_VARIABLES,
        ),
    )
    add_run_options(command)
    command.set_defaults(handler=replay, graceful=True)


def replay(args: argparse.Namespace) -> int:
    deadline = start(args)
    settings = Settings.from_env()
    # The bucket, and the key that authenticates what is in it (a dry run's random key would reject everything).
    needed = {
        "KEYREPORT_SPILL_BUCKET": settings.spill_bucket,
        "KEYREPORT_FINGERPRINT_SECRET_ARN": settings.fingerprint_secret_arn,
    }
    missing = [f"{name} is required for keyreport replay" for name, value in needed.items() if value is None]
    if missing:
        raise ConfigError(missing)
    wiring = Wiring(settings, aws_session())
    assert wiring.spill is not None  # checked above
    read_only = isinstance(settings.sink, StdoutSettings)  # a dry run shows the batches and changes nothing
    progress = Progress(wanted(args), "spilled batches", "batch")
    try:
        spill, sink = CountingSpill(wiring.spill, progress), CountingSink(wiring.sink, progress)
        outcome = replay_spilled(spill, sink, deadline, read_only=read_only)
    finally:
        progress.close()
    print(
        f"{outcome.objects} spilled batch(es) taken: {outcome.summary()}"
        f"{' (a dry run: shown, none deleted)' if read_only else ''}",
        file=sys.stderr,
    )
    for line in [*outcome.quarantined, *outcome.errors, *([f"stopped: {outcome.stopped}"] if outcome.stopped else [])]:
        print(f"  {line}", file=sys.stderr)
    return EXIT_OK if outcome.succeeded else EXIT_RUN_FAILED
