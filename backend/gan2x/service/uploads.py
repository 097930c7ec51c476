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
4. integrity: ``verify()``, then a full decode of the now bounded image: a
   corrupt or truncated file is 422.

The file is saved as ``uploads/<new id>.<format's extension>``; the client's
file name, if any, is never used.
"""
from __future__ import annotations

import io
import time

from PIL import Image

from .config import UploadLimits
from .datadir import DataDir, write_atomically
from .errors import ApiError
from .store import JobStore, UploadRecord, new_id

EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


def apply_pil_limits(limits: UploadLimits) -> None:
    """Sets PIL's decompression-bomb limit (a process-wide PIL setting) to ours."""
    Image.MAX_IMAGE_PIXELS = limits.max_pixels


def inspect_image(content: bytes, limits: UploadLimits) -> tuple[str, int, int]:
    """(format, width, height) of an acceptable image, or ApiError saying why not."""
    if not content:
        raise ApiError(422, "empty_upload", "the upload is empty: send the image file's bytes as the request body")
    try:
        with Image.open(io.BytesIO(content), formats=list(limits.formats)) as image:  # the header only
            image_format = image.format
            width, height = image.size
    except Image.DecompressionBombError as error:  # past twice PIL's limit: refused from the header
        raise _too_many_pixels(None, limits, str(error)) from None
    except Exception:  # PIL raises many types for what is not an image it knows
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
        with Image.open(io.BytesIO(content), formats=[image_format]) as image:
            image.load()
    except Exception as error:  # PIL raises many types for broken files
        raise ApiError(422, "corrupt_image", f"the {image_format} image could not be decoded ({error}); "
                                             "is the file complete? Re-export it and try again") from None
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
    image_format, width, height = inspect_image(content, limits)
    upload_id = new_id()
    file_name = data_dir.upload_file(upload_id, EXTENSIONS[image_format]).name
    write_atomically(data_dir.uploads / file_name, content)
    record = UploadRecord(id=upload_id, file_name=file_name, format=image_format, width=width, height=height,
                          bytes=len(content), created_at=time.time())
    store.add_upload(record)
    return record
