"""`keyreport check`: every hop the configured run would use, proved with one cheap call each, with the fixes.

One module per family of hops (AWS reads, organization, spill bucket, Azure sign-in, Key Vault, sinks);
`runner.plan` picks the hops the settings call for and `runner.run_checks` runs them. Nothing is shipped:
the sinks are probed with an empty batch, which the services accept without creating a row.
"""

from keyreport.check.report import Hop, Report
from keyreport.check.runner import run_checks

__all__ = ["Hop", "Report", "run_checks"]
