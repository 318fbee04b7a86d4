"""A local S3-compatible endpoint for benchmarks: moto's server (``moto[server]``) on the
loopback interface, with a bucket made for the lake.

moto answers conditional puts (``If-None-Match: *`` -> 412) as S3 does, which delta-rs relies
on for safe concurrent commits; it keeps objects in memory, so its figures say what tasklake
does per request and per commit, not what a real object store's latency costs.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.harness import free_port
from tests.s3 import environ


def s3_env(endpoint: str) -> dict[str, str]:
    """The variables delta-rs, pyarrow and DuckDB read to reach ``endpoint``."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }


@contextmanager
def moto_server(log: Path, bucket: str) -> Iterator[dict[str, str]]:
    """A moto S3 server with ``bucket``; yields the environment that reaches it (also set in
    this process while it runs, so ``schemas.delta.Tables`` can read the lake)."""
    import boto3

    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    env = s3_env(endpoint)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(endpoint + "/", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start: {log.read_text()}") from None
                time.sleep(0.1)
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_REGION"],
        ).create_bucket(Bucket=bucket)
        with environ(env):
            yield env
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
