"""A local S3 endpoint for the tests (moto's server behind one lock, `s3server.py`), and ways to
read what quarry wrote there the way analysts and operators would.

`S3Server.start()` runs the server on 127.0.0.1 on a free port and creates the test bucket; its
`env` holds the standard AWS variables quarry and the readers take (a fixed fake key pair: moto
checks no signature). `mirror` copies a warehouse prefix into a local folder, so the plain-Parquet
and truth checks of the local tests judge it object for object.
"""
from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3

BUCKET = "quarry-test"
# A secret no log line, error or table may show (test_s3.py looks for it).
SECRET = "quarry-test-secret-Wm9vZ2xl"
KEY_ID = "AKIAQUARRYTEST"


class S3Server:
    def __init__(self, proc: subprocess.Popen, port: int):
        self.proc = proc
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = {
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }
        self.client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=KEY_ID,
                                   aws_secret_access_key=SECRET, region_name="us-east-1")

    @classmethod
    def start(cls, workdir: Path) -> "S3Server":
        port_file = workdir / "port"
        log = open(workdir / "server.log", "wb")
        proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("s3server.py")), str(port_file)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto server did not start: {(workdir / 'server.log').read_text()}")
            time.sleep(0.05)
        server = cls(proc, int(port_file.read_text()))
        server.client.create_bucket(Bucket=BUCKET)
        return server

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def new_warehouse(self, name: str = "wh") -> str:
        """A fresh prefix: s3://quarry-test/<name>-<unique>."""
        return f"s3://{BUCKET}/{name}-{uuid.uuid4().hex[:10]}"

    def keys(self, url: str) -> dict[str, int]:
        """Every object under a warehouse URL: key relative to it → size."""
        prefix = self.key(url, "")
        out = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for o in page.get("Contents", []):
                out[o["Key"][len(prefix):]] = o["Size"]
        return out

    def mirror(self, url: str, into: Path) -> Path:
        """Copies every object of the warehouse at `url` into the folder `into` (made anew)."""
        prefix = self.key(url, "")
        into.mkdir(parents=True, exist_ok=False)
        for rel in self.keys(url):
            dst = into / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(BUCKET, prefix + rel, str(dst))
        return into

    @staticmethod
    def key(url: str, rel: str) -> str:
        """The bucket key of `rel` in the warehouse at `url`."""
        return f"{url.removeprefix(f's3://{BUCKET}/').rstrip('/')}/{rel}"

    def put(self, url: str, rel: str, body: bytes):
        self.client.put_object(Bucket=BUCKET, Key=self.key(url, rel), Body=body)

    def get(self, url: str, rel: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=BUCKET, Key=self.key(url, rel))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def delete(self, url: str, rel: str):
        self.client.delete_object(Bucket=BUCKET, Key=self.key(url, rel))

    def storage_options(self) -> dict:
        """The same settings as deltalake / polars `storage_options`."""
        return {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_ALLOW_HTTP": "true"}
