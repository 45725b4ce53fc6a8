"""Files API and the ways an input image can be referenced."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import replicate
from PIL import Image

from core.emulator.schema import SDXL_LATEST as SDXL


def png(width: int = 48, height: int = 32, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def img2img(client: replicate.Client, image: Any, strength: float = 0.5) -> Any:
    prediction = client.predictions.create(version=SDXL, input={
        "image": image, "prompt": "p", "prompt_strength": strength, "seed": 1})
    prediction.wait()
    return prediction


def test_upload_get_download(client: replicate.Client, server: Any, token: str) -> None:
    data = png()
    uploaded = client.files.create(io.BytesIO(data), filename="face.png", metadata={"k": "v"})
    assert uploaded.name == "face.png" and uploaded.content_type == "image/png"
    assert uploaded.size == len(data) and uploaded.metadata == {"k": "v"}
    assert set(uploaded.checksums) == {"sha256", "md5"} and uploaded.etag
    assert uploaded.urls["get"] == f"{server.base_url}/v1/files/{uploaded.id}"
    assert uploaded.expires_at > uploaded.created_at
    assert client.files.get(uploaded.id).id == uploaded.id
    download = f"{server.base_url}/v1/files/{uploaded.id}/download"
    assert httpx.get(download).status_code == 401
    response = httpx.get(download, headers={"Authorization": f"Bearer {token}"})
    assert response.content == data
    assert [f.id for f in client.files.list()] == [uploaded.id]
    assert client.files.delete(uploaded.id)
    assert httpx.get(download, headers={"Authorization": f"Bearer {token}"}).status_code == 404


def test_file_passed_as_input_is_uploaded_and_used(client: replicate.Client) -> None:
    prediction = img2img(client, io.BytesIO(png()), strength=0.0)
    assert prediction.status == "succeeded"
    assert prediction.input["image"].startswith(client._base_url + "/v1/files/")
    output = Image.open(io.BytesIO(httpx.get(prediction.output[0]).content))
    assert output.size == (48, 32) and output.getpixel((5, 5)) == (200, 30, 30)
    assert "img2img mode" in prediction.logs


def test_data_uri_input(client: replicate.Client) -> None:
    uri = "data:image/png;base64," + base64.b64encode(png(colour=(10, 200, 10))).decode()
    prediction = img2img(client, uri, strength=0.0)
    output = Image.open(io.BytesIO(httpx.get(prediction.output[0]).content))
    assert output.getpixel((0, 0)) == (10, 200, 10)


def test_output_url_as_input(client: replicate.Client) -> None:
    first = img2img(client, io.BytesIO(png()), strength=0.6)
    second = img2img(client, first.output[0], strength=0.0)
    assert second.status == "succeeded"
    assert httpx.get(second.output[0]).content == httpx.get(first.output[0]).content


def test_unreachable_or_broken_images_fail_the_prediction(client: replicate.Client) -> None:
    remote = img2img(client, "https://example.com/face.png")
    assert remote.status == "failed" and "example.com/face.png" in remote.error
    broken = img2img(client, "data:image/png;base64," + base64.b64encode(b"not an image").decode())
    assert broken.status == "failed" and "cannot identify image file" in broken.error


def test_upload_without_content_field_is_refused(http: httpx.Client) -> None:
    response = http.post("/v1/files", files={"other": ("a.txt", b"x", "text/plain")})
    assert response.status_code == 422 and response.json()["status"] == 422
    bad_metadata = http.post("/v1/files", files={"content": ("a.txt", b"x", "text/plain")},
                             data={"metadata": "[1]"})
    assert bad_metadata.status_code == 422
