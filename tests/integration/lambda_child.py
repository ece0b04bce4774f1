"""One real Lambda invocation in a process of its own, for tests/integration/test_deadline.py.

`python -m tests.integration.lambda_child SECONDS`: imports the handler (Lambda's init phase), prints
`ready`, invokes lambda_handler with a context that counts SECONDS down, and prints how long it took.
The parent kills this process with SIGKILL when SECONDS have passed since `ready`, as Lambda does.
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    timeout = float(sys.argv[1])
    import keyreport.handler
    from sandbox.lambda_context import LocalLambdaContext

    context = LocalLambdaContext(timeout)
    started = time.monotonic()
    print("ready", flush=True)
    try:
        keyreport.handler.lambda_handler({}, context)  # type: ignore[arg-type]
    except Exception as error:  # RunFailed is the expected end of a run that could not deliver everything
        print(f"raised {type(error).__name__}", flush=True)
    print(f"finished {time.monotonic() - started:.3f}", flush=True)


if __name__ == "__main__":
    main()
