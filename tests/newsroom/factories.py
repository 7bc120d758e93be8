from __future__ import annotations

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image


def jpeg_upload(name: str = "photo.jpg", size: tuple[int, int] = (640, 427)) -> SimpleUploadedFile:
    """A real JPEG file, as a browser uploads it."""
    out = io.BytesIO()
    Image.new("RGB", size, (40, 90, 140)).save(out, "JPEG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/jpeg")
