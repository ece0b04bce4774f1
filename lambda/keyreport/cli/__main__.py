"""`python -m keyreport.cli`: the same as the `keyreport` command."""

import sys

from keyreport.cli import main

sys.exit(main())
