"""An S3-compatible server on loopback: moto in server mode, in a process of its own.

The code under test reaches it through boto3 exactly as it would reach AWS S3 or MinIO
(`S3_ENDPOINT_URL`); nothing of ours is replaced.
"""
from __future__ import annotations

import sys

import requests

from tests.support import ManagedProcess, free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test-access-key", "AWS_SECRET_ACCESS_KEY": "test-secret-key",
               "AWS_REGION": "us-east-1"}


class S3Server(ManagedProcess):
    name = "moto-s3"

    def __init__(self):
        self.port = free_port()
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/moto-api/", timeout=1).status_code < 500
        except requests.RequestException:
            return False

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name=CREDENTIALS["AWS_REGION"],
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
