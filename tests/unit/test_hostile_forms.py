"""Hostile bodies against the create and upload endpoints, through the whole app (ASGI, fake
clock): every one is a 4xx naming the field, and a rejected request stores nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest

from providers.simkit import sample
from tests.harness import Harness, settings_for

PNG = sample("image.png")
BOUNDARY = "vidgate-test-boundary"
MULTIPART = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
LIMIT = 1 << 20  # [security] max_upload_bytes in these tests


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    settings = settings_for(tmp_path)
    settings = msgspec.structs.replace(settings, security=msgspec.structs.replace(settings.security, max_upload_bytes=LIMIT))
    async with Harness.start(settings) as harness:
        yield harness


def stored_files(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "vidgate.db") as db:
        (count,) = db.execute("SELECT count(*) FROM files").fetchone()
    files_dir = tmp_path / "vidgate-files"
    on_disk = [p for p in files_dir.iterdir() if not p.name.startswith(".")] if files_dir.exists() else []
    assert len(on_disk) == count, "every stored record has its bytes and no bytes lack a record"
    return int(count)


def multipart(*parts: tuple[str, bytes] | tuple[str, bytes, str]) -> bytes:
    """A raw multipart body: (name, value) text parts and (name, bytes, filename) file parts."""
    out = b""
    for part in parts:
        name, value = part[0], part[1]
        disposition = f'form-data; name="{name}"'
        if len(part) == 3:
            disposition += f'; filename="{part[2]}"'
            out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\nContent-Type: image/png\r\n\r\n".encode() + value + b"\r\n"
        else:
            out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def error_of(response: httpx.Response) -> dict[str, str]:
    error: dict[str, str] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


# ---------------------------------------------------------------------------
# encodings and media types
# ---------------------------------------------------------------------------


async def test_a_multipart_text_field_that_is_not_utf8_is_a_400_naming_it(h: Harness, tmp_path: Path) -> None:
    response = await h.client.post("/v1/videos", content=multipart(("model", b"seedance-2.0"), ("prompt", b"caf\xe9 \xff")), headers=MULTIPART)
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == "prompt"
    assert "UTF-8" in error["message"]


async def test_a_url_encoded_field_that_is_not_utf8_is_a_400_naming_it(h: Harness) -> None:
    response = await h.client.post("/v1/videos", content=b"prompt=%FF%FE", headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert error_of(response)["param"] == "prompt"


@pytest.mark.parametrize("content_type", ["Application/JSON", "application/json; charset=utf-8", "APPLICATION/JSON ; Charset=UTF-8"])
async def test_json_media_types_are_case_insensitive_and_take_parameters(h: Harness, content_type: str) -> None:
    response = await h.client.post("/v1/videos", content=b'{"prompt":"a cat","provider":"powertokens"}', headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"


async def test_a_multipart_media_type_in_capitals_is_a_form(h: Harness) -> None:
    headers = {"content-type": f"Multipart/Form-Data; boundary={BOUNDARY}"}
    response = await h.client.post("/v1/videos", content=multipart(("prompt", b"a cat"), ("provider", b"powertokens")), headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("count", ["²".encode(), b"1" * 5000, b"\xb2", b"-1", b"0x10"])
async def test_a_hostile_retry_count_is_no_retry(h: Harness, count: bytes) -> None:
    body = {"prompt": "a cat", "provider": "powertokens"}
    first = await h.client.post("/v1/videos", json=body)
    again = await h.client.post("/v1/videos", json=body, headers={"x-stainless-retry-count": count})  # type: ignore[dict-item]
    assert again.status_code == 200, again.text
    assert again.json()["id"] != first.json()["id"]  # not taken for the SDK's retry of the first


async def test_a_plain_retry_count_still_finds_the_first_try(h: Harness) -> None:
    body = {"prompt": "a cat", "provider": "powertokens"}
    first = await h.client.post("/v1/videos", json=body)
    again = await h.client.post("/v1/videos", json=body, headers={"x-stainless-retry-count": "1"})
    assert again.json()["id"] == first.json()["id"]


# ---------------------------------------------------------------------------
# [security] max_upload_bytes
# ---------------------------------------------------------------------------


async def test_files_refuses_an_upload_over_max_upload_bytes_naming_the_field(h: Harness, tmp_path: Path) -> None:
    big = PNG + b"\0" * (LIMIT + 1 - len(PNG))
    response = await h.client.post("/v1/files", files={"file": ("big.png", big, "image/png")})
    assert response.status_code == 413
    error = error_of(response)
    assert error["param"] == "file"
    assert str(LIMIT) in error["message"]
    assert stored_files(tmp_path) == 0


async def test_files_takes_an_upload_at_exactly_the_limit(h: Harness, tmp_path: Path) -> None:
    exact = PNG + b"\0" * (LIMIT - len(PNG))
    response = await h.client.post("/v1/files", files={"file": ("exact.png", exact, "image/png")})
    assert response.status_code == 200, response.text
    assert response.json()["bytes"] == LIMIT
    assert stored_files(tmp_path) == 1


async def test_a_create_file_part_over_the_limit_is_a_413_naming_it(h: Harness, tmp_path: Path) -> None:
    big = PNG + b"\0" * (5 * LIMIT)
    response = await h.client.post("/v1/videos", data={"prompt": "a cat"}, files={"input_reference": ("big.png", big, "image/png")})
    assert response.status_code == 413
    assert error_of(response)["param"] == "input_reference"
    assert stored_files(tmp_path) == 0


# ---------------------------------------------------------------------------
# a rejected create stores nothing
# ---------------------------------------------------------------------------


async def test_a_reference_create_without_a_prompt_stores_none_of_its_images(h: Harness, tmp_path: Path) -> None:
    files = [("references[images][]", (f"{i}.png", PNG, "image/png")) for i in range(9)]
    response = await h.client.post("/v1/videos", data={"model": "seedance-2.0"}, files=files)
    assert response.status_code == 422
    assert error_of(response)["param"] == "prompt"
    assert stored_files(tmp_path) == 0


async def test_hundreds_of_junk_parts_store_nothing(h: Harness, tmp_path: Path) -> None:
    files = [(f"junk{i}", (f"{i}.png", PNG, "image/png")) for i in range(200)]
    response = await h.client.post("/v1/videos", data={"prompt": "a cat"}, files=files)
    assert 400 <= response.status_code < 500
    assert stored_files(tmp_path) == 0


async def test_too_many_parts_is_a_413_naming_the_first_part_over(h: Harness, tmp_path: Path) -> None:
    files = [(f"junk{i}", (f"{i}.png", PNG, "image/png")) for i in range(300)]
    response = await h.client.post("/v1/videos", files=files)
    assert response.status_code == 413
    assert error_of(response)["param"] == "junk256"
    assert stored_files(tmp_path) == 0


async def test_a_create_that_no_provider_can_serve_removes_the_images_it_stored(h: Harness, tmp_path: Path) -> None:
    # Stored first (routing needs the probed facts), then refused: the images go again.
    files = [("references[images][]", (f"{i}.png", PNG, "image/png")) for i in range(3)]
    response = await h.client.post("/v1/videos", data={"prompt": "@image1 dances", "model": "seedance-2.0", "seconds": "999"}, files=files)
    assert response.status_code == 422
    assert error_of(response)["code"] == "no_provider_can_serve"
    assert stored_files(tmp_path) == 0


async def test_a_refused_create_keeps_an_earlier_upload_it_named(h: Harness, tmp_path: Path) -> None:
    uploaded = (await h.client.post("/v1/files", files={"file": ("cat.png", PNG, "image/png")})).json()
    body = {"prompt": "@image1 dances", "seconds": 999, "references": {"images": [{"file_id": uploaded["id"]}, "data:image/png;base64," + _b64(PNG)]}}
    response = await h.client.post("/v1/videos", json=body)
    assert response.status_code == 422
    assert stored_files(tmp_path) == 1  # the data: URL's copy went, the earlier upload stayed
    assert (await h.client.get(f"/v1/files/{uploaded['id']}")).status_code == 200


async def test_an_accepted_multipart_create_stores_its_parts(h: Harness, tmp_path: Path) -> None:
    response = await h.client.post("/v1/videos", data={"prompt": "a cat", "provider": "powertokens"}, files={"input_reference": ("cat.png", PNG, "image/png")})
    assert response.status_code == 200, response.text
    assert response.json()["mode"] == "first_frame"
    assert stored_files(tmp_path) == 1


# ---------------------------------------------------------------------------
# every string has a bound
# ---------------------------------------------------------------------------


async def test_a_huge_purpose_is_refused_naming_it(h: Harness, tmp_path: Path) -> None:
    response = await h.client.post("/v1/files", data={"purpose": "x" * 100_000}, files={"file": ("cat.png", PNG, "image/png")})
    assert response.status_code == 413
    assert error_of(response)["param"] == "purpose"
    assert stored_files(tmp_path) == 0


async def test_a_long_purpose_is_refused_naming_it(h: Harness) -> None:
    response = await h.client.post("/v1/files", data={"purpose": "x" * 65}, files={"file": ("cat.png", PNG, "image/png")})
    assert response.status_code == 400
    assert error_of(response)["param"] == "purpose"


@pytest.mark.parametrize("path", ["/v1/files", "/v1/videos"])
@pytest.mark.parametrize("length", [256, 10_000, 40_000])
async def test_a_long_filename_is_refused_naming_its_field(h: Harness, tmp_path: Path, path: str, length: int) -> None:
    name = "file" if path == "/v1/files" else "input_reference"
    response = await h.client.post(path, content=multipart(("prompt", b"a cat"), (name, PNG, "x" * length + ".png")), headers=MULTIPART)
    assert response.status_code in (400, 413)
    assert error_of(response)["param"] == name
    assert stored_files(tmp_path) == 0


async def test_a_long_text_field_is_refused_naming_it(h: Harness) -> None:
    response = await h.client.post("/v1/videos", content=multipart(("prompt", b"a" * (2 * LIMIT))), headers=MULTIPART)
    assert response.status_code == 413
    assert error_of(response)["param"] == "prompt"


async def test_a_huge_model_name_or_file_id_is_not_echoed_whole(h: Harness) -> None:
    for body in ({"prompt": "a", "model": "m" * 100_000}, {"input_reference": {"file_id": "f" * 100_000}}, {"prompt": "a", "size": "9" * 100_000}):
        response = await h.client.post("/v1/videos", json=body)
        assert 400 <= response.status_code < 500, response.text
        assert len(response.content) < 2000


async def test_a_huge_idempotency_key_is_refused_naming_it(h: Harness) -> None:
    response = await h.client.post("/v1/videos", json={"prompt": "a"}, headers={"idempotency-key": "k" * 10_000})
    assert response.status_code == 400
    assert error_of(response)["param"] == "Idempotency-Key"


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()
