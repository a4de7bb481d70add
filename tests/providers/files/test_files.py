"""The file service with the official `openai` SDK against a real `gengate serve`: upload, retrieve,
content, list (purpose filter, paging), delete; per-key isolation; per-key size and count limits (413);
bad input in OpenAI's envelope with nothing stored."""

from __future__ import annotations

import os
from typing import Any

import openai
import pytest
from harness.processes import http_json

from .conftest import MiB

pytestmark = pytest.mark.timeout(180)


def stored_objects(server: Any) -> list[str]:
    root = server.data_dir / "files" / "objects" / "filesvc"
    return [str(p) for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_round_trip(files_server, sdk):
    client = sdk(files_server, files_server.make_key())
    data = os.urandom(300_000)
    made = client.files.create(file=("blob.bin", data), purpose="assistants")
    assert made.id.startswith("file-") and made.object == "file"
    assert (made.bytes, made.filename, made.purpose, made.status) == (300_000, "blob.bin", "assistants", "processed")
    assert client.files.retrieve(made.id) == made
    assert client.files.content(made.id).read() == data
    assert [f.id for f in client.files.list()] == [made.id]
    deleted = client.files.delete(made.id)
    assert (deleted.id, deleted.deleted) == (made.id, True)
    with pytest.raises(openai.NotFoundError) as caught:
        client.files.retrieve(made.id)
    assert caught.value.body["type"] == "invalid_request_error"
    assert list(client.files.list()) == []


def test_another_key_sees_nothing(files_server, sdk):
    owner = sdk(files_server, files_server.make_key())
    other = sdk(files_server, files_server.make_key())
    made = owner.files.create(file=("notes.txt", b"private notes"), purpose="user_data")
    for call in (lambda: other.files.retrieve(made.id), lambda: other.files.content(made.id),
                 lambda: other.files.delete(made.id)):
        with pytest.raises(openai.NotFoundError):
            call()
    assert list(other.files.list()) == []
    assert owner.files.content(made.id).read() == b"private notes"


def test_list_filters_by_purpose_and_pages(files_server, sdk):
    client = sdk(files_server, files_server.make_key())
    made = [client.files.create(file=(f"f{i}.txt", f"file {i}".encode()),
                                purpose="assistants" if i % 2 else "user_data") for i in range(5)]
    newest_first = [f.id for f in reversed(made)]
    page = client.files.list(limit=2)
    assert [f.id for f in page.data] == newest_first[:2] and page.has_more
    assert [f.id for f in client.files.list(limit=2)] == newest_first  # the SDK follows `after` to the end
    assert [f.id for f in client.files.list(order="asc", limit=3)] == [f.id for f in made]
    assert [f.id for f in client.files.list(purpose="assistants")] == [made[3].id, made[1].id]
    raw = client.files.list(purpose="user_data", limit=1)
    assert raw.data[0].id == made[4].id and raw.has_more


def test_size_and_storage_limits_are_413(files_server, sdk):
    client = sdk(files_server, files_server.make_key())
    with pytest.raises(openai.APIStatusError) as caught:
        client.files.create(file=("big.bin", b"x" * (2 * MiB + 1)), purpose="assistants")
    assert caught.value.status_code == 413
    assert "larger than the maximum of 2097152 bytes" in caught.value.body["message"]
    client.files.create(file=("a.bin", b"a" * (MiB + MiB // 2)), purpose="assistants")
    with pytest.raises(openai.APIStatusError) as caught:
        client.files.create(file=("b.bin", b"b" * (MiB + MiB // 2 + 1)), purpose="assistants")
    assert caught.value.status_code == 413
    assert "storage quota of 3145728 bytes" in caught.value.body["message"]
    assert len(list(client.files.list())) == 1


def test_count_limit_is_413(files_server, sdk):
    client = sdk(files_server, files_server.make_key())
    for i in range(12):
        client.files.create(file=(f"{i}.txt", b"x"), purpose="assistants")
    with pytest.raises(openai.APIStatusError) as caught:
        client.files.create(file=("13.txt", b"x"), purpose="assistants")
    assert caught.value.status_code == 413
    assert "limit of 12 files" in caught.value.body["message"]


@pytest.mark.parametrize("form,param", [
    ({"purpose": "nonsense"}, "purpose"),
    ({}, "purpose"),
], ids=["bad-purpose", "no-purpose"])
def test_bad_form_is_400_and_stores_nothing(files_server, sdk, form, param):
    key = files_server.make_key()
    before = stored_objects(files_server)
    client = sdk(files_server, key)
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/files", cast_to=object, body=form, files=[("file", ("a.txt", b"hello"))],
                    options={"headers": {"Content-Type": "multipart/form-data"}})
    assert caught.value.body["param"] == param
    assert stored_objects(files_server) == before
    assert list(client.files.list()) == []


def test_expires_after(files_server, sdk):
    client = sdk(files_server, files_server.make_key())
    made = client.files.create(file=("e.txt", b"soon gone"), purpose="user_data",
                               expires_after={"anchor": "created_at", "seconds": 3600})
    assert made.expires_at == made.created_at + 3600
    for bad in ({"anchor": "created_at", "seconds": 10}, {"anchor": "last_active_at", "seconds": 3600}):
        with pytest.raises(openai.BadRequestError) as caught:
            client.files.create(file=("e.txt", b"x"), purpose="user_data", expires_after=bad)
        assert caught.value.body["param"].startswith("expires_after")
    assert len(list(client.files.list())) == 1


def test_multipart_without_a_file_is_400(files_server, http_post_form):
    key = files_server.make_key()
    status, body = http_post_form(files_server.url + "/v1/files", key, {"purpose": "assistants"})
    assert status == 400 and body["error"]["param"] == "file"
    status, body = http_post_form(files_server.url + "/v1/files", key, {"purpose": "assistants"},
                                  files=[("file", "a.txt", b"1"), ("file", "b.txt", b"2")])
    assert status == 400 and "only one file" in body["error"]["message"]


def test_other_bad_requests_in_openai_envelope(files_server):
    key = files_server.make_key()
    auth = {"Authorization": f"Bearer {key}"}
    status, body = http_json("POST", files_server.url + "/v1/files", {"purpose": "assistants"}, headers=auth)
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    status, body = http_json("GET", files_server.url + "/v1/files")
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    status, body = http_json("GET", files_server.url + "/v1/files?limit=0", headers=auth)
    assert status == 400 and body["error"]["param"] == "limit"
    status, body = http_json("GET", files_server.url + "/v1/files/file-x/y/z", headers=auth)
    assert status == 404 and set(body["error"]) == {"message", "type", "param", "code"}
    status, body = http_json("PUT", files_server.url + "/v1/files", headers=auth)
    assert status == 405 and "error" in body
    status, body = http_json("GET", files_server.url + "/v1/files/file-nope/content", headers=auth)
    assert status == 404 and body["error"]["message"] == "No such File object: file-nope"
    assert "Traceback" not in files_server.log_text()
