"""How a gengate `runway://` upload URI reaches the upstream (uploads.py), without a server: a small file
as a data URI, a large one as a signed gengate media URL when the public URL is HTTPS on a domain name;
expired, unknown and other keys' uploads are Runway's issues; the upload form's policy is signed."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from gengate.core.errors import InvalidRequest
from gengate.providers.runway import uploads
from gengate.providers.runway.errors import ValidationFailed
from gengate.storage.local import LocalStorage
from gengate.storage.signing import UrlSigner

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def _signer(public: str = "https://gengate.example.com") -> UrlSigner:
    return UrlSigner(b"k" * 32, public)


async def _upload(storage: LocalStorage, key_id: int, data: bytes, expires: float | None = None) -> str:
    upload_id = f"{int(expires or time.time() + 3600)}-{'A' * 22}"
    await storage.put_bytes(uploads.storage_key(key_id, upload_id), data, "image/png")
    return uploads.URI_PREFIX + upload_id


async def test_a_small_upload_is_a_data_uri_and_a_large_one_a_signed_url(tmp_path):
    storage = LocalStorage(tmp_path)
    signer = _signer()
    small = await _upload(storage, 7, PNG)
    out = await uploads.Uploads(storage, signer, 7, 3600).resolve({"promptImage": [{"uri": small}]})
    assert out["promptImage"][0]["uri"].startswith("data:image/png;base64,iVBORw0KGgo")
    big_id = f"{int(time.time() + 3600)}-{'B' * 22}"
    await storage.put_bytes(uploads.storage_key(7, big_id), PNG + b"\0" * uploads.MAX_INLINE_BYTES, "image/png")
    url = (await uploads.Uploads(storage, signer, 7, 3600).resolve({"uri": uploads.URI_PREFIX + big_id}))["uri"]
    parts = urlsplit(url)
    assert url.startswith("https://gengate.example.com/files/runway/uploads/7/")
    query = parse_qs(parts.query)
    assert signer.verify(parts.path.removeprefix("/files/"), query["exp"][0], query["sig"][0])
    with pytest.raises(ValidationFailed) as err:  # the same file behind a loopback public URL
        await uploads.Uploads(storage, _signer("http://127.0.0.1:8000"), 7, 3600).resolve(
            {"uri": uploads.URI_PREFIX + big_id})
    assert err.value.issues[0]["path"] == ["uri"] and err.value.issues[0]["code"] == "too_big"


async def test_expired_unknown_and_other_keys_uploads_are_issues(tmp_path):
    storage = LocalStorage(tmp_path)
    expired = await _upload(storage, 7, PNG, expires=time.time() - 5)
    mine = await _upload(storage, 7, PNG)
    with pytest.raises(ValidationFailed) as err:
        await uploads.Uploads(storage, _signer(), 7, 3600).resolve({"aUri": expired, "bUri": "runway://x/y"})
    assert [i["path"] for i in err.value.issues] == [["aUri"], ["bUri"]]
    with pytest.raises(ValidationFailed):
        await uploads.Uploads(storage, _signer(), 8, 3600).resolve({"videoUri": mine})
    with pytest.raises(ValidationFailed):
        await uploads.NoUploads().resolve({"promptImage": [{"uri": mine}]})
    assert await uploads.NoUploads().resolve({"a": "https://x.example/a.png"}) == {"a": "https://x.example/a.png"}
    text = {"promptText": "runway://gengate/not-an-upload is a fine thing to say"}
    assert await uploads.Uploads(storage, _signer(), 7, 3600).resolve(text) == text


def test_the_form_policy_is_signed_and_expires():
    signer = _signer()
    started = uploads.start(signer, 3, {"filename": "cat.png"}, now=1_000_000)
    policy = uploads.read_policy(signer, started["fields"], now=1_000_000)
    assert policy.storage_key.startswith("runway/uploads/3/") and policy.filename == "cat.png"
    assert started["runwayUri"].endswith(policy.storage_key.rsplit("/", 1)[1])
    for fields in ({**started["fields"], "policy": started["fields"]["policy"] + "x"}, {}):
        with pytest.raises(InvalidRequest) as err:
            uploads.read_policy(signer, fields, now=1_000_000)
        assert err.value.status == 403
    with pytest.raises(InvalidRequest):
        uploads.read_policy(signer, started["fields"], now=1_000_000 + uploads.UPLOAD_TTL + 1)
