import hashlib
import io
import random
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.errors import InvalidInput
from core.emulator.images import encode_png
from core.data.images import ImageInfo, fit_width, image_size, make_thumbnail, validate_upload

LIMITS = {"max_bytes": 20 * 2**20, "max_pixels": 40_000_000}
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def decode(info: ImageInfo) -> Image.Image:
    image = Image.open(io.BytesIO(info.data))
    image.load()
    return image


def close_to(actual, expected, tolerance=12) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def noisy_rgb(width: int, height: int, seed: int = 0) -> Image.Image:
    """Incompressible pixels, so encoders produce realistically large files."""
    pixels = random.Random(seed).randbytes(width * height * 3)
    return Image.frombytes("RGB", (width, height), pixels)


def png_declaring(width: int, height: int) -> bytes:
    """A valid 1×1 PNG whose header claims width×height: a decompression bomb's calling card."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    ihdr = 8  # the IHDR chunk follows the 8-byte signature: length, type, fields, CRC
    data[ihdr + 8 : ihdr + 16] = struct.pack(">II", width, height)
    fields = bytes(data[ihdr + 4 : ihdr + 8 + 13])
    data[ihdr + 8 + 13 : ihdr + 8 + 17] = struct.pack(">I", zlib.crc32(fields))
    return bytes(data)


def exif_with(orientation: int | None = None, gps: bool = False) -> Image.Exif:
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    if gps:
        exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 22.0, 1.5), 3: "E", 4: (4.0, 53.0, 2.0)})
    exif[0x010F] = "PhoneMaker"  # camera make: the kind of thing that should not survive
    return exif


# ---------------------------------------------------------------- accepted and normalised


def test_exif_orientation_is_applied():
    # Stored 64×32 with red in the top-left corner; orientation 6 means "rotate 90° clockwise
    # to display", which puts that corner at the top right of a 32×64 picture.
    stored = Image.new("RGB", (64, 32), BLUE)
    ImageDraw.Draw(stored).rectangle((0, 0, 15, 15), fill=RED)
    data = encode(stored, "JPEG", quality=95, exif=exif_with(orientation=6).tobytes())
    info = validate_upload(data, filename="portrait.jpg", **LIMITS)
    image = decode(info)
    assert (info.width, info.height) == image.size == (32, 64)
    assert close_to(image.getpixel((31 - 4, 4)), RED)
    assert close_to(image.getpixel((4, 4)), BLUE)
    assert 0x0112 not in image.getexif()  # orientation applied once, not left to apply twice


def test_gps_and_other_exif_are_stripped_from_jpeg_and_png():
    exif = exif_with(gps=True).tobytes()
    sources = {
        "JPEG": encode(Image.new("RGB", (32, 32), RED), "JPEG", exif=exif, comment=b"at home"),
        "PNG": encode(Image.new("RGB", (32, 32), RED), "PNG", exif=exif),
    }
    for fmt, data in sources.items():
        assert b"PhoneMaker" in data
        info = validate_upload(data, filename=f"x.{fmt.lower()}", **LIMITS)
        image = decode(info)
        assert info.format == fmt
        assert len(image.getexif()) == 0 and not image.getexif().get_ifd(0x8825)
        assert b"PhoneMaker" not in info.data and b"Exif" not in info.data
        assert b"at home" not in info.data


def test_jpeg_stays_jpeg_and_hash_is_of_the_normalised_bytes():
    info = validate_upload(encode(noisy_rgb(64, 48), "JPEG"), filename="a.jpg", **LIMITS)
    assert (info.format, info.content_type) == ("JPEG", "image/jpeg")
    assert info.sha256 == hashlib.sha256(info.data).hexdigest()
    assert decode(info).format == "JPEG"


def test_normalising_is_deterministic_so_reuploads_share_a_hash():
    data = encode(noisy_rgb(40, 30), "PNG")
    assert validate_upload(data, **LIMITS).sha256 == validate_upload(data, **LIMITS).sha256


def test_cmyk_jpeg_becomes_rgb():
    data = encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95)
    info = validate_upload(data, filename="print.jpg", **LIMITS)
    image = decode(info)
    assert image.mode == "RGB" and info.format == "JPEG"
    assert close_to(image.getpixel((16, 16)), RED)


def test_16_bit_png_is_scaled_to_8_bit_not_clipped():
    image = Image.new("I;16", (32, 32), 32768)  # mid-grey at 16 bits
    image.putpixel((0, 0), 65535)
    info = validate_upload(encode(image, "PNG"), filename="scan.png", **LIMITS)
    result = decode(info)
    assert (result.mode, info.format) == ("RGB", "PNG")
    assert result.getpixel((16, 16)) == (128, 128, 128)
    assert result.getpixel((0, 0)) == WHITE


def test_transparency_is_composited_on_white():
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((0, 0, 15, 31), fill=(*RED, 255))
    result = decode(validate_upload(encode(image, "PNG"), filename="cutout.png", **LIMITS))
    assert result.mode == "RGB"
    assert result.getpixel((4, 4)) == RED
    assert result.getpixel((28, 4)) == WHITE


def test_palette_gif_with_transparency_becomes_rgb():
    image = Image.new("P", (32, 32), 0)
    image.putpalette([*BLUE, *RED] + [0, 0, 0] * 254)
    ImageDraw.Draw(image).rectangle((0, 0, 15, 31), fill=1)
    data = encode(image, "GIF", transparency=0)
    info = validate_upload(data, filename="sticker.gif", **LIMITS)
    result = decode(info)
    assert (result.mode, info.format) == ("RGB", "PNG")
    assert result.getpixel((4, 4)) == RED
    assert result.getpixel((28, 4)) == WHITE  # the transparent blue index


def test_multi_picture_jpeg_from_a_phone_is_a_still_photo():
    # Phones save MPO files: a JPEG plus a preview or depth frame. That is not an animation.
    out = io.BytesIO()
    Image.new("RGB", (32, 32), RED).save(
        out, "MPO", save_all=True, append_images=[Image.new("RGB", (8, 8), BLUE)]
    )
    info = validate_upload(out.getvalue(), filename="IMG_0001.jpg", **LIMITS)
    assert (info.format, info.width, info.height) == ("JPEG", 32, 32)
    assert decode(info).format == "JPEG"
    assert close_to(decode(info).getpixel((16, 16)), RED)


def test_webp_is_accepted():
    info = validate_upload(encode(noisy_rgb(20, 10), "WEBP"), filename="a.webp", **LIMITS)
    assert (info.width, info.height, info.format) == (20, 10, "PNG")


# ---------------------------------------------------------------- refused


def test_animated_gif_is_refused():
    frames = [Image.new("RGB", (16, 16), colour) for colour in (RED, BLUE)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(InvalidInput, match="dance.gif is animated; upload a still image"):
        validate_upload(out.getvalue(), filename="dance.gif", **LIMITS)


def test_truncated_jpeg_is_refused():
    data = encode(noisy_rgb(256, 256), "JPEG")
    with pytest.raises(InvalidInput, match="half.jpg is not a readable PNG, JPEG, WebP"):
        validate_upload(data[: len(data) // 2], filename="half.jpg", **LIMITS)


def test_random_bytes_are_refused():
    data = random.Random(1).randbytes(4096)
    with pytest.raises(InvalidInput, match="noise.png is not a readable PNG, JPEG, WebP"):
        validate_upload(data, filename="noise.png", **LIMITS)


def test_unsupported_format_is_refused():
    with pytest.raises(InvalidInput, match="is not a readable"):
        validate_upload(encode(Image.new("RGB", (8, 8)), "BMP"), filename="old.bmp", **LIMITS)


def test_empty_file_is_refused():
    with pytest.raises(InvalidInput, match="empty.png is empty"):
        validate_upload(b"", filename="empty.png", **LIMITS)


def test_over_size_file_is_refused_before_decoding():
    data = b"\xff\xd8" + b"\0" * (int(31.2 * 2**20) - 2)
    with pytest.raises(InvalidInput, match=r"photo.jpg is 31.2 MB; the limit is 20 MB"):
        validate_upload(data, filename="photo.jpg", **LIMITS)


def test_decompression_bomb_is_refused_without_decoding():
    with pytest.raises(InvalidInput, match="bomb.png declares more than 179 megapixels"):
        validate_upload(png_declaring(30_000, 30_000), filename="bomb.png", **LIMITS)


@pytest.mark.parametrize(
    ("warning_filter", "message"),
    [("error", "declares more than 89 megapixels"), ("ignore", r"is 10000×9000 pixels")],
)
def test_pillows_bomb_warning_is_refused_whether_or_not_warnings_are_errors(
    warning_filter, message
):
    # 90 megapixels: above Pillow's warning threshold, below its hard limit.
    with warnings.catch_warnings():
        warnings.simplefilter(warning_filter, Image.DecompressionBombWarning)
        with pytest.raises(InvalidInput, match=message):
            validate_upload(png_declaring(10_000, 9_000), filename="big.png", **LIMITS)


def test_too_many_pixels_is_refused_with_the_dimensions():
    with pytest.raises(InvalidInput, match=r"huge.png is 8000×6000 pixels \(48.0 megapixels\)"):
        validate_upload(png_declaring(8000, 6000), filename="huge.png", **LIMITS)


def test_too_long_a_side_is_refused_with_the_dimensions():
    with pytest.raises(InvalidInput, match=r"strip.png is 10000×100 pixels.*8192 pixels a side"):
        validate_upload(png_declaring(10_000, 100), filename="strip.png", **LIMITS)


def test_message_without_a_filename_still_reads():
    with pytest.raises(InvalidInput, match="^The upload is not a readable"):
        validate_upload(b"not an image", **LIMITS)


# ---------------------------------------------------------------- thumbnails and sizes


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1024, 1024), (400, 400)), ((1200, 300), (400, 100)), ((64, 32), (64, 32))],
)
def test_thumbnail_is_jpeg_within_the_limit(size, expected):
    data, content_type = make_thumbnail(encode(noisy_rgb(*size), "PNG"))
    thumbnail = Image.open(io.BytesIO(data))
    assert content_type == "image/jpeg" and thumbnail.format == "JPEG"
    assert thumbnail.size == expected


def test_thumbnail_honours_orientation_and_uses_jpeg_draft():
    stored = Image.new("RGB", (2048, 1024), BLUE)
    data = encode(stored, "JPEG", exif=exif_with(orientation=6).tobytes())
    thumbnail = Image.open(io.BytesIO(make_thumbnail(data, max_px=200)[0]))
    assert thumbnail.size == (100, 200)


def test_thumbnail_of_garbage_is_invalid_input():
    with pytest.raises(InvalidInput, match="not a readable"):
        make_thumbnail(b"garbage")


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        chunks.append((kind, data[offset + 8:offset + 8 + length]))
        offset += 12 + length
    return chunks


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack(">I4s", len(body), kind) + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def with_chunk_after_idat(data: bytes, kind: bytes, body: bytes) -> bytes:
    return data[:-12] + png_chunk(kind, body) + data[-12:]  # before IEND


def pixels(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    image = Image.open(io.BytesIO(data))
    return image.mode, image.size, image.tobytes()


PNG_KINDS = {
    "rgb, several IDAT chunks": lambda: encode(noisy_rgb(512, 512), "PNG"),
    "rgba": lambda: encode(noisy_rgb(96, 64).convert("RGBA"), "PNG"),
    "grey": lambda: encode(noisy_rgb(96, 64).convert("L"), "PNG"),
    "palette with transparency": lambda: encode(
        noisy_rgb(64, 64).quantize(16), "PNG", transparency=3),
    "16-bit": lambda: encode(Image.new("I;16", (40, 30), 4000), "PNG"),
    "best compression": lambda: encode(noisy_rgb(200, 100), "PNG", compress_level=9),
    "emulator output, one IDAT": lambda: encode_png(
        np.asarray(noisy_rgb(128, 96))),
    "text after the pixels": lambda: with_chunk_after_idat(
        encode(noisy_rgb(64, 64), "PNG"), b"tEXt", b"Comment\x00made after"),
}


@pytest.mark.parametrize("kind", PNG_KINDS)
def test_every_kind_of_png_gets_an_upright_jpeg_thumbnail(kind):
    data = PNG_KINDS[kind]()
    width, height = Image.open(io.BytesIO(data)).size
    thumbnail, content_type = make_thumbnail(data, max_px=48)
    image = Image.open(io.BytesIO(thumbnail))
    assert (content_type, image.format, image.mode) == ("image/jpeg", "JPEG", "RGB")
    assert max(image.size) == min(48, max(width, height))
    assert image.size[0] / image.size[1] == pytest.approx(width / height, rel=0.1)


def png_with_pixel_stream(data: bytes, stream: bytes) -> bytes:
    """``data`` (a one-IDAT PNG) with ``stream`` as its pixel data."""
    return data[:8] + b"".join(png_chunk(kind, stream if kind == b"IDAT" else body)
                               for kind, body in png_chunks(data))


@pytest.mark.parametrize("damage", ["truncated", "cut inside the pixels", "corrupt pixels",
                                    "animated", "interlaced", "not a png",
                                    "more rows than declared", "fewer rows than declared"])
def test_a_damaged_png_gets_a_thumbnail_of_its_declared_size_or_a_clear_error(damage):
    data = encode(noisy_rgb(128, 128), "PNG")
    small = encode_png(np.zeros((64, 64, 3), "uint8"))  # one IDAT
    rows = 64 * (1 + 64 * 3)
    damaged = {
        "truncated": data[:-5],
        "cut inside the pixels": data[: len(data) // 2],
        "corrupt pixels": data[:200] + bytes(b ^ 0x5A for b in data[200:400]) + data[400:],
        "animated": with_chunk_after_idat(data, b"fdAT", b"\x00" * 8),
        "interlaced": data[:28] + b"\x01" + data[29:],
        "not a png": encode(noisy_rgb(32, 32), "JPEG"),
        # a decompression bomb: 64 × 64 declared, 50 MB inflated
        "more rows than declared": png_with_pixel_stream(small, zlib.compress(bytes(50_000_000))),
        "fewer rows than declared": png_with_pixel_stream(small, zlib.compress(bytes(rows - 1))),
    }[damage]
    try:
        thumbnail, _ = make_thumbnail(damaged, max_px=48)
    except InvalidInput as exc:
        assert "not a readable" in str(exc)
    else:  # Pillow decodes what is there and stops at the last declared row
        declared = Image.open(io.BytesIO(damaged)).size
        assert Image.open(io.BytesIO(thumbnail)).size == (min(48, declared[0]), min(48, declared[1]))


def test_thumbnail_of_a_truncated_png_is_invalid_input():
    data = encode(noisy_rgb(256, 256), "PNG")
    with pytest.raises(InvalidInput, match="not a readable"):
        make_thumbnail(data[: len(data) // 2])


def test_image_size_reads_the_header_and_honours_orientation():
    assert image_size(png_declaring(8000, 6000)) == (8000, 6000)
    rotated = encode(Image.new("RGB", (64, 32)), "JPEG", exif=exif_with(orientation=6).tobytes())
    assert image_size(rotated) == (32, 64)


def test_fit_width_narrows_a_grid_thumbnail_and_leaves_a_narrow_one_alone():
    thumb, _ = make_thumbnail(encode(noisy_rgb(400, 300), "PNG"))
    narrow = fit_width(thumb, 160)
    image = Image.open(io.BytesIO(narrow))
    assert (image.format, image.size) == ("JPEG", (160, 120))
    assert len(narrow) < len(thumb)
    assert fit_width(narrow, 400) is narrow  # already narrow enough: the same bytes
