"""Uploaded images: bounded, sniffed, stored under names the service chooses.

The order of checks, cheapest and safest first:

1. bytes: the body is refused (413) past ``UploadLimits.max_bytes``, before
   it is read when it declares its length, else as soon as it passes it
   (``errors.RequestBodyLimit``);
2. format: PIL opens the bytes restricted to ``UploadLimits.formats``; this
   reads the header only. Not one of those formats: 415. The client's
   content type is not trusted and not looked at;
3. pixels: width * height from the header against ``max_pixels`` (413)
   before anything is decoded; PIL's own decompression-bomb limit is set to
   the same number as a second fence (PIL refuses past twice it, even to
   read the header);
4. integrity: ``verify()``; for a PNG, that its compressed image data
   holds every row its header declares (Pillow's decoder stops quietly at
   the end of a complete zlib stream, leaving the missing rows black); then
   a full decode of the now bounded image: a corrupt or truncated file is
   422. A file that starts like an accepted format but cannot be read is
   422 too, with the reason, not 415.

A PNG's text chunks (``tEXt``, ``zTXt``, ``iTXt``: metadata the fit never
reads) are dropped before these checks and from the stored file, so
metadata of any size within the byte limit is harmless: a ``zTXt`` chunk is
never inflated (Pillow refuses one that inflates past 1 MiB). A colour
profile (``iCCP``) that inflates past that is refused (415) saying so.

The file is saved as ``uploads/<new id>.<format's extension>``; the client's
file name, if any, is never used.
"""
from __future__ import annotations

import io
import struct
import time
import zlib

from PIL import Image

from .config import UploadLimits
from .datadir import DataDir, write_atomically
from .errors import ApiError
from .store import JobStore, UploadRecord, new_id

EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt"})
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
"""Samples per pixel of each PNG colour type (grey, RGB, palette, grey + alpha, RGBA)."""
ADAM7_PASSES = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
"""(x0, y0, dx, dy) of the seven passes of an interlaced PNG."""
SIGNATURES = {"PNG": (PNG_SIGNATURE,), "JPEG": (b"\xff\xd8\xff",)}


def apply_pil_limits(limits: UploadLimits) -> None:
    """Sets PIL's decompression-bomb limit (a process-wide PIL setting) to ours."""
    Image.MAX_IMAGE_PIXELS = limits.max_pixels


def _sniff(content: bytes) -> str | None:
    """The accepted format ``content`` starts like (magic bytes), if any."""
    for image_format, signatures in SIGNATURES.items():
        if content.startswith(signatures):
            return image_format
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "WEBP"
    return None


def _png_chunks(content: bytes) -> list[tuple[bytes, int, int]] | None:
    """(type, start, end) of each chunk of a PNG, ``end`` past its CRC, up to
    IEND; None when the chunk structure is broken (left to Pillow to report)."""
    chunks, position = [], len(PNG_SIGNATURE)
    while position + 12 <= len(content):
        length, kind = struct.unpack(">I4s", content[position:position + 8])
        end = position + 12 + length
        if length > 0x7FFFFFFF or end > len(content):
            return None
        chunks.append((kind, position, end))
        position = end
        if kind == b"IEND":
            return chunks
    return None


def strip_png_text(content: bytes) -> bytes:
    """``content`` without its text chunks when it is a PNG with any (module docstring)."""
    if not content.startswith(PNG_SIGNATURE):
        return content
    chunks = _png_chunks(content)
    if chunks is None or not any(kind in PNG_TEXT_CHUNKS for kind, _, _ in chunks):
        return content
    kept = [content[start:end] for kind, start, end in chunks if kind not in PNG_TEXT_CHUNKS]
    return PNG_SIGNATURE + b"".join(kept)


def _png_data_shortfall(content: bytes) -> str | None:
    """Why a PNG's image data falls short of what its header declares, or None.

    Pillow's decoder ends without an error when the zlib stream ends, even
    rows early; so the IDAT data is inflated here (streamed: nothing is kept,
    and it stops at the expected size, itself bounded by the pixel limit)
    and measured against width, height, bit depth, colour type and interlacing."""
    chunks = _png_chunks(content)
    if not chunks or chunks[0][0] != b"IHDR":
        return "its chunk structure is broken"
    start = chunks[0][1]
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", content[start + 8:start + 21])
    if colour_type not in PNG_CHANNELS:
        return f"its header names colour type {colour_type}, which PNG does not have"
    bits = PNG_CHANNELS[colour_type] * depth
    if interlace:
        passes = [((width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy)
                  for x0, y0, dx, dy in ADAM7_PASSES if width > x0 and height > y0]
    else:
        passes = [(width, height)]
    expected = sum(rows * (1 + (columns * bits + 7) // 8) for columns, rows in passes)
    inflater, inflated = zlib.decompressobj(), 0
    for kind, chunk_start, chunk_end in chunks:
        if kind != b"IDAT":
            continue
        pending = content[chunk_start + 8:chunk_end - 4]
        while pending and inflated < expected and not inflater.eof:
            try:
                inflated += len(inflater.decompress(pending, 1 << 20))
            except zlib.error as error:
                return f"its compressed image data is damaged ({error})"
            pending = inflater.unconsumed_tail
        if inflated >= expected or inflater.eof:
            break
    if inflated < expected and not inflater.eof:
        try:
            inflated += len(inflater.flush())  # what the last call held back, at most a window's worth
        except zlib.error as error:
            return f"its compressed image data is damaged ({error})"
    if inflated >= expected:
        return None
    if not interlace:
        row_bytes = 1 + (width * bits + 7) // 8
        return (f"its header declares {width}x{height} pixels, but its image data holds only {inflated // row_bytes} "
                f"of its {height} rows ({inflated} of {expected} bytes)")
    return (f"its header declares {width}x{height} pixels (interlaced), but its image data holds only {inflated} of "
            f"the {expected} bytes they need")


def inspect_image(content: bytes, limits: UploadLimits) -> tuple[str, int, int]:
    """(format, width, height) of an acceptable image, or ApiError saying why not.
    ``store_upload`` passes a PNG without its text chunks (``strip_png_text``):
    the copy it stores."""
    if not content:
        raise ApiError(422, "empty_upload", "the upload is empty: send the image file's bytes as the request body")
    try:
        with Image.open(io.BytesIO(content), formats=list(limits.formats)) as image:  # the header only
            image_format = image.format
            width, height = image.size
    except Image.DecompressionBombError as error:  # past twice PIL's limit: refused from the header
        raise _too_many_pixels(None, limits, str(error)) from None
    except Exception as error:  # PIL raises many types for what is not an image it knows
        sniffed = _sniff(content)
        if "MAX_TEXT_CHUNK" in str(error):  # after strip_png_text only a colour profile can be that large
            raise ApiError(415, "unsupported_image",
                           "the PNG's embedded colour profile (its iCCP chunk) inflates to more than 1 MiB, more "
                           "than this service reads; save the image without its colour profile (or as sRGB) and "
                           "try again") from None
        if sniffed in limits.formats:
            raise ApiError(422, "corrupt_image", f"the file starts like a {sniffed} image but could not be read "
                                                 f"({error}); is the file complete? Re-export it and try "
                                                 "again") from None
        raise ApiError(415, "unsupported_image",
                       f"the upload is not a {', '.join(limits.formats)} image (checked from its content, "
                       "whatever its content type says); convert it to PNG and try again") from None
    if width * height > limits.max_pixels:
        raise _too_many_pixels((width, height), limits)
    if min(width, height) < limits.min_side:
        raise ApiError(422, "image_too_small", f"the image is {width}x{height} pixels; each side must be at "
                                               f"least {limits.min_side}")
    try:  # now bounded: check the file's integrity, then decode it whole
        with Image.open(io.BytesIO(content), formats=[image_format]) as image:
            image.verify()
        shortfall = _png_data_shortfall(content) if image_format == "PNG" else None
        if shortfall is None:
            with Image.open(io.BytesIO(content), formats=[image_format]) as image:
                image.load()
    except Exception as error:  # PIL raises many types for broken files
        raise ApiError(422, "corrupt_image", f"the {image_format} image could not be decoded ({error}); "
                                             "is the file complete? Re-export it and try again") from None
    if shortfall is not None:
        raise ApiError(422, "corrupt_image", f"the PNG image could not be decoded: {shortfall}; is the file "
                                             "complete? Re-export it and try again")
    return image_format, width, height


def _too_many_pixels(size, limits: UploadLimits, detail: str | None = None) -> ApiError:
    stated = f"the image is {size[0]}x{size[1]} = {size[0] * size[1]} pixels" if size else \
        f"the image has too many pixels ({detail})"
    return ApiError(413, "image_too_large", f"{stated}; this service accepts at most {limits.max_pixels} pixels "
                                            "(width * height): scale it down")


def store_upload(content: bytes, limits: UploadLimits, data_dir: DataDir, store: JobStore) -> UploadRecord:
    """Checks ``content`` (module docstring), saves it under a new id and records it."""
    if len(content) > limits.max_bytes:  # RequestBodyLimit normally stops it earlier
        from .errors import too_large_error

        raise too_large_error(limits.max_bytes, "the upload")
    content = strip_png_text(content)
    image_format, width, height = inspect_image(content, limits)
    upload_id = new_id()
    file_name = data_dir.upload_file(upload_id, EXTENSIONS[image_format]).name
    write_atomically(data_dir.uploads / file_name, content)
    record = UploadRecord(id=upload_id, file_name=file_name, format=image_format, width=width, height=height,
                          bytes=len(content), created_at=time.time())
    store.add_upload(record)
    return record
