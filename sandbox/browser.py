"""A stand-in web browser for sign-in tests: ``$BROWSER`` for Python's ``webbrowser`` (which MSAL uses).

``install(directory, ca_bundle)`` writes an executable that, like a real browser launcher, returns at once
and visits the URL in the background: it GETs the Entra emulator's /authorize page over TLS (trusting the
sandbox CA) and follows its redirect to the ``http://localhost`` listener MSAL opened, as a signed-in
person's browser would.
"""

from __future__ import annotations

import shlex
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path


def install(directory: Path, ca_bundle: Path) -> Path:
    """An executable to put in ``BROWSER``; it passes the URL to this module."""
    launcher = directory / "sandbox-browser"
    command = [sys.executable, "-m", "sandbox.browser", "--ca", str(ca_bundle)]
    launcher.write_text(f'#!/bin/sh\nexec {shlex.join(command)} "$1"\n')
    launcher.chmod(0o755)
    return launcher


def visit(url: str, ca_bundle: str) -> int:
    context = ssl.create_default_context(cafile=ca_bundle)
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
    with opener.open(url, timeout=30) as page:  # the redirect to localhost is followed, as a browser does
        page.read()
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--visit"]:
        return visit(argv[3], argv[2])
    ca, url = argv[1], argv[2]
    # Detach, as `xdg-open` does: the caller (MSAL) only starts serving the redirect after this returns.
    subprocess.Popen([sys.executable, "-m", "sandbox.browser", "--visit", "--ca", ca, url], start_new_session=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
