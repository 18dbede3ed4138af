"""Connecting to many regions: a boto3 Session per region (the old way) against one Session per
profile (as app.connected does now), side by side in one run. No request is sent: this is the
cost of building clients, which every run pays before its first call.

    python benchmarks/connect_regions.py [--regions 20]
"""

from __future__ import annotations

import argparse
import os
import time

from esm_reconcile import aws

REGIONS = [
    *("us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2"),
    *("eu-west-3", "eu-central-1", "eu-north-1", "eu-south-1", "ap-south-1", "ap-east-1"),
    *("ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2"),
    *("ca-central-1", "sa-east-1", "af-south-1", "me-south-1"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--regions", type=int, default=20)
    regions = REGIONS[: parser.parse_args().regions]
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")  # clients need no real credentials
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    aws.connect(region=regions[0])  # imports and first model load, outside both timings

    started = time.perf_counter()
    for region in regions:
        aws.connect(region=region)
    each = time.perf_counter() - started

    started = time.perf_counter()
    session = aws.new_session(None)
    for region in regions:
        aws.connect(region=region, session=session)
    shared = time.perf_counter() - started

    print(
        f"{len(regions)} regions: a session each {each:.2f} s, one session {shared:.2f} s "
        f"({each / shared:.1f}x)"
    )


if __name__ == "__main__":
    main()
