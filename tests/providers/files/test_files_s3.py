"""The file service on S3 storage: `gengate serve` with `GENGATE_STORAGE_URL=s3://bucket/prefix` against
moto in server mode (a real local S3-compatible server, its own process). The `openai` SDK round trip
and extraction work as on local storage, the bytes are in the bucket under the prefix, and gengate's
own signed `/files/...` link streams the object (with Range) without redirecting to the bucket."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from harness import documents as docs
from harness.s3 import S3_ENV, MotoServer, moto_server

from gengate.storage.signing import UrlSigner

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="module")
def s3_setup(moto: MotoServer, make_server: Any) -> tuple[Any, str]:
    bucket = moto.new_bucket()
    return make_server(sandbox=False, env=moto.env(bucket, "gg/media")), bucket


def bucket_keys(moto: MotoServer, bucket: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=moto.url, aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_round_trip_on_s3(s3_setup, moto, sdk):
    server, bucket = s3_setup
    client = sdk(server, server.make_key())
    data = os.urandom(1_500_000)
    made = client.files.create(file=("clip.bin", data), purpose="assistants")
    assert client.files.retrieve(made.id).bytes == len(data)
    assert client.files.content(made.id).read() == data
    stored = [k for k in bucket_keys(moto, bucket) if made.id in k]
    assert len(stored) == 1 and stored[0].startswith("gg/media/filesvc/")

    # gengate's own signed link serves the object from the bucket, ranges included, with no redirect
    signing_key = server.db_query("SELECT value FROM settings_kv WHERE name = 'url_signing_key'")[0]["value"]
    url = UrlSigner(bytes.fromhex(signing_key), server.url).url_for(stored[0].removeprefix("gg/media/"))
    request = urllib.request.Request(url, headers={"Range": "bytes=1000-1999"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 206 and resp.url == url
        assert resp.read() == data[1000:2000]

    client.files.delete(made.id)
    assert not [k for k in bucket_keys(moto, bucket) if made.id in k]


def test_extraction_on_s3(s3_setup, moto, sdk):
    server, bucket = s3_setup
    client = sdk(server, server.make_key())
    pdf = docs.pdf(["Stored in a bucket", "and read back"], title="S3 doc")
    made = client.files.create(file=("s3.pdf", pdf), purpose="file-extract")
    assert made.status == "processed"
    reply = json.loads(client.files.content(made.id).text)
    assert "Stored in a bucket" in reply["content"] and reply["title"] == "S3 doc"
    assert len([k for k in bucket_keys(moto, bucket) if made.id in k]) == 2  # the file and its text
    assert "Traceback" not in server.log_text()
