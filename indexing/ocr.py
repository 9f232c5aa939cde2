"""OCR for PDF pages without a usable text layer (issue 13, item 1): scanned pages, and pages whose
text layer is garbage (fonts without a Unicode map give "(cid:12)" runs, symbols or private-use
characters). Each such page is rendered with pdfium at 200 dpi and read by Tesseract (Debian's
``tesseract-ocr``, which `make setup` installs as root; English): 1.5 s a page on one CPU thread,
and exact text on clean scans, where RapidOCR — the wheel alternative — dropped the spaces between
words ("JohnSmeaton"). Without Tesseract such pages are skipped and reported, never silently empty.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import unicodedata
from pathlib import Path

DPI = 200
MAX_SIDE_PX = 5000  # a huge page (a 14,400-pt sheet) is rendered smaller, not into gigabytes
TIMEOUT_S = 120  # one page; a page that takes longer is given up (reported as skipped)
_CID = re.compile(r"\(cid:\d+\)")


def engine() -> str | None:
    """The Tesseract executable, or None when it is not installed."""
    return shutil.which("tesseract")


def is_garbage(text: str) -> bool:
    """Does a page's text layer carry no readable text? Empty, or mostly "(cid:N)" runs, replacement,
    private-use or unassigned characters, or too few letters and digits to be prose."""
    stripped = "".join(text.split())
    if len(stripped) < 20:
        return not stripped or sum(c.isalnum() for c in stripped) < len(stripped) / 2
    cids = sum(len(m.group()) for m in _CID.finditer(stripped))
    odd = sum(1 for c in stripped if c == "\ufffd" or unicodedata.category(c) in ("Co", "Cn", "Cs"))
    alnum = sum(c.isalnum() for c in stripped)
    return (cids + odd) / len(stripped) > 0.2 or alnum / len(stripped) < 0.4


def read_unreadable(pdf: bytes, pages: list[str]) -> tuple[list[str], tuple[int, ...], tuple[int, ...]]:
    """``pages`` (the text layer, page by page) with the pages that have no usable text OCR'd; a page
    with neither text nor images is blank and left alone; one OCR cannot read (no engine, nothing
    legible) becomes empty — its garbage layer is not indexed either — and is listed as skipped.
    Returns (pages, OCR'd pages, skipped pages), page numbers 1-based."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    out, done, skipped = list(pages), [], []
    unreadable = [i for i, text in enumerate(pages) if is_garbage(text)]
    if not unreadable:
        return out, (), ()
    document = pdfium.PdfDocument(pdf)
    try:
        for i in unreadable:
            page = document[i]
            if not pages[i].strip() and next(iter(page.get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE])), None) is None:
                continue  # blank: nothing to read
            text = _tesseract(page)
            if text is not None and not is_garbage(text):
                out[i] = text
                done.append(i + 1)
            else:
                out[i] = ""
                skipped.append(i + 1)
    finally:
        document.close()
    return out, tuple(done), tuple(skipped)


def _tesseract(page) -> str | None:  # noqa: ANN001 - a pypdfium2 PdfPage
    """Tesseract's text of a rendered page; None without Tesseract, on failure or past the time limit."""
    binary = engine()
    if binary is None:
        return None
    longest = max(page.get_size()) or 1.0  # points
    image = page.render(scale=min(DPI / 72, MAX_SIDE_PX / longest)).to_pil()
    with tempfile.TemporaryDirectory(prefix="lloco-ocr-") as scratch:
        png = Path(scratch) / "page.png"
        image.save(png)
        try:
            done = subprocess.run([binary, str(png), "stdout", "-l", "eng"], capture_output=True, timeout=TIMEOUT_S,
                                  check=False, env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin"})
        except subprocess.TimeoutExpired:
            return None
    return done.stdout.decode("utf-8", errors="replace") if done.returncode == 0 else None
