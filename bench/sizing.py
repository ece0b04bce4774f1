"""Lambda sizing: wall time and cost per run at each memory size, estimated from measured CPU seconds.

    python -m bench.sizing --cpu 1000:2.2 5000:7.5          # users:CPU seconds of a whole run (bench.scale memory)

No Lambda is measured here. Lambda gives a function CPU in proportion to its memory (one vCPU at 1,769 MB);
one Python process runs Python on one core at a time, so more than one vCPU is not counted. A run is
bounded by its CPU (CPU seconds / vCPU share) or by IAM's latency (calls x latency / concurrency),
whichever is longer; the estimate is that maximum, so it is a lower bound where the two are close.
"""

from __future__ import annotations

import argparse
import math

MEMORY_SIZES = (512, 1024, 1769, 3008)
FULL_VCPU_MB = 1769
# Lambda's price per GB-second, us-east-1: arm64 (the package's architecture) and x86_64.
PRICE_PER_GB_SECOND = {"arm64": 0.0000133334, "x86_64": 0.0000166667}


def iam_calls(users: int) -> int:
    """One ListAccessKeys per user, ListUsers pages of 1,000, the report asked for and fetched."""
    return users + math.ceil(users / 1000) + 2


def estimate(users: int, cpu_seconds: float, memory_mb: int, latency: float, concurrency: int) -> tuple[float, float]:
    """(wall seconds, dollars on arm64) of one run."""
    vcpu = min(1.0, memory_mb / FULL_VCPU_MB)
    wall = max(cpu_seconds / vcpu, iam_calls(users) * latency / concurrency)
    return wall, wall * memory_mb / 1024 * PRICE_PER_GB_SECOND["arm64"]


def table(measured: dict[int, float], latency: float, concurrency: int) -> str:
    lines = [
        "| users | CPU s (measured) | " + " | ".join(f"{size} MB" for size in MEMORY_SIZES) + " |",
        "|---:|---:|" + "---:|" * len(MEMORY_SIZES),
    ]
    for users, cpu in sorted(measured.items()):
        cells = []
        for size in MEMORY_SIZES:
            wall, dollars = estimate(users, cpu, size, latency, concurrency)
            cells.append(f"{wall:.0f} s, ${dollars * 1000:.2f} per 1,000 runs")
        lines.append(f"| {users:,} | {cpu:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", nargs="+", required=True, help="users:seconds, e.g. 5000:7.5")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=24)
    args = parser.parse_args()
    measured = {int(users): float(seconds) for users, seconds in (pair.split(":") for pair in args.cpu)}
    print(table(measured, args.latency, args.concurrency))


if __name__ == "__main__":
    main()
