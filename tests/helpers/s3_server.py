"""A real S3-compatible server on 127.0.0.1 for tests: moto's standalone server in its own process.

Run as a script (`python tests/helpers/s3_server.py --bucket B`) it starts the server on a free loopback port,
creates the bucket, prints `READY <port>` and serves until stdin closes or it is terminated. A
separate process (not moto's in-process thread) so that it also runs inside the network namespace of
tests/helpers/ray_cluster.py (prefix the command with `nsenter -t PID -n`), and so that its request handling
does not compete with the test driver for the GIL.

Needs moto >= 5.2.2: moto 5.2.1 answers CompleteMultipartUpload with a wrong XML root, which pyarrow
(every write Ray Tune makes) rejects as "error embedded in a 200 OK response" (getmoto/moto#10055).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field

import pytest

# pyarrow and boto3 read these; the values only have to match what moto expects (anything).
CLIENT_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # never probe 169.254.169.254 for credentials
}
BUCKET = "nas-test"


@dataclass
class S3Server:
    port: int
    bucket: str
    proc: subprocess.Popen = field(repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def uri(self, prefix: str = "runs") -> str:
        """`s3://BUCKET/PREFIX?endpoint_override=...`: the endpoint travels in the URI (and in the
        filesystem object Ray pickles for trials), so no endpoint variable is needed anywhere."""
        return f"s3://{self.bucket}/{prefix}?endpoint_override=127.0.0.1:{self.port}&scheme=http"

    def plain_uri(self, prefix: str = "runs") -> str:
        """`s3://BUCKET/PREFIX`: needs `env` (AWS_ENDPOINT_URL) in every process that opens it."""
        return f"s3://{self.bucket}/{prefix}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a client process (credentials and, for plain URIs, the endpoint)."""
        return {**CLIENT_ENV, "AWS_ENDPOINT_URL": self.endpoint}

    def keys(self, prefix: str = "") -> list[str]:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint, **_boto_kwargs())
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _boto_kwargs() -> dict[str, str]:
    return {"aws_access_key_id": CLIENT_ENV["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": CLIENT_ENV["AWS_SECRET_ACCESS_KEY"],
            "region_name": CLIENT_ENV["AWS_DEFAULT_REGION"]}


def start_s3_server(bucket: str = BUCKET, prefix_cmd: list[str] | None = None, timeout: float = 60.0) -> S3Server:
    """Start the server (optionally under PREFIX_CMD, e.g. `nsenter -t PID -n`) and wait until its bucket
    exists."""
    cmd = [*(prefix_cmd or []), sys.executable, os.path.abspath(__file__), "--bucket", bucket]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **CLIENT_ENV})
    deadline = time.monotonic() + timeout
    line = proc.stdout.readline()  # blocks until READY or the process dies
    if not line.startswith("READY") or time.monotonic() > deadline:
        proc.kill()
        raise RuntimeError(f"moto server did not start: {line!r} (exit {proc.poll()})")
    return S3Server(int(line.split()[1]), bucket, proc)


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on 127.0.0.1 with bucket `nas-test`, credentials in os.environ (not the endpoint:
    `s3_server.uri()` carries it). Stopped at the end of the session."""
    server = start_s3_server()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in CLIENT_ENV.items():
            mp.setenv(key, value)
        yield server
    server.stop()


@pytest.fixture
def s3_uri(s3_server, request):
    """A fresh prefix in the bucket for one test, as a URI with the endpoint in it."""
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in request.node.name[:40])
    return s3_server.uri(f"{name}-{uuid.uuid4().hex[:6]}")


def _serve(bucket: str) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:  # a free port; the tiny window before moto binds it is acceptable here
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", **_boto_kwargs()).create_bucket(Bucket=bucket)
    print(f"READY {port}", flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    finally:
        server.stop()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--bucket", default=BUCKET)
    _serve(parser.parse_args().bucket)
