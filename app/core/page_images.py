"""Render a cited PDF page as an image, with the cited snippet highlighted (pypdfium2 + PIL).

The snippet comes from pypdf's text, while the boxes come from pdfium's text page, so the two are
matched on their letters and digits only (case-folded, NFKC-normalised): spacing, line breaks and
hyphenation differences between the two extractors do not matter. A snippet that does not match
as a whole (it runs onto the next page, or an extractor dropped a word) is matched piece by piece.
pdfium is not thread-safe, so every call holds one module lock.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

    from app.core.citations import Citation

DEFAULT_SCALE = 1.5  # 72 dpi * 1.5 = 108 dpi: readable in a chat column
PIECE_WORDS = 4  # the fallback matches the snippet in runs of this many words
HIGHLIGHT_FILL = (255, 226, 70)  # a highlighter's yellow
HIGHLIGHT_EDGE = (214, 137, 0)
MAX_SIDE_PX = 2000  # a page's image is at most this wide and tall, whatever the page's declared size
_LOCK = threading.Lock()

Box = tuple[float, float, float, float]  # left, top, right, bottom in image pixels


@dataclass
class PageImage:
    """A rendered page: 1-based ``page`` of ``n_pages``, with ``boxes`` drawn around the snippet."""

    image: Image
    page: int
    n_pages: int
    boxes: list[Box] = field(default_factory=list)

    @property
    def highlighted(self) -> bool:
        return bool(self.boxes)


def _key(text: str) -> list[tuple[str, int]]:
    """(letter, index into ``text``) for each letter or digit, case-folded and NFKC-normalised
    (a ligature 'ﬁ' gives 'f' and 'i', both at the ligature's index)."""
    out = []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKC", ch).casefold():
            if c.isalnum():
                out.append((c, i))
    return out


def match_spans(page_text: str, snippet: str) -> list[tuple[int, int]]:
    """Index ranges [start, end] (inclusive) of ``page_text`` that hold ``snippet``.

    The whole snippet if it is there; else each run of :data:`PIECE_WORDS` words found, in order.
    """
    keys = _key(page_text)
    hay = "".join(c for c, _ in keys)
    whole = "".join(c for c, _ in _key(snippet))
    if not whole or not hay:
        return []
    at = hay.find(whole)
    if at >= 0:
        return [(keys[at][1], keys[at + len(whole) - 1][1])]
    words = snippet.split()
    spans, start = [], 0
    for n in range(0, len(words), PIECE_WORDS):
        piece = "".join(c for c, _ in _key(" ".join(words[n:n + PIECE_WORDS])))
        if len(piece) < 6:  # too short to place reliably
            continue
        at = hay.find(piece, start)
        if at >= 0:
            spans.append((keys[at][1], keys[at + len(piece) - 1][1]))
            start = at + len(piece)
    return spans


def _line_boxes(char_boxes: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
    """Merge consecutive character boxes (left, bottom, right, top; PDF points) into one box per line."""
    lines: list[list[float]] = []
    for left, bottom, right, top in char_boxes:
        if right - left <= 0 or top - bottom <= 0:
            continue  # generated spaces and line breaks have no box
        if lines:
            cur = lines[-1]
            overlap = min(top, cur[3]) - max(bottom, cur[1])  # vertical: a comma or a superscript overlaps its line
            if overlap > 0 and left >= cur[0] - 1:
                cur[0], cur[1], cur[2], cur[3] = min(cur[0], left), min(cur[1], bottom), max(cur[2], right), max(cur[3], top)
                continue
        lines.append([left, bottom, right, top])
    return [tuple(b) for b in lines]  # type: ignore[misc]


def render_page(pdf: Path | str, page: int, snippet: str | None = None, *, scale: float = DEFAULT_SCALE) -> PageImage:
    """Page ``page`` (1-based) of the PDF at ``pdf`` as an RGB image, ``snippet`` highlighted if found."""
    import pypdfium2 as pdfium
    from pypdfium2 import raw

    with _LOCK:
        doc = pdfium.PdfDocument(str(pdf))
        try:
            if not 1 <= page <= len(doc):
                raise ValueError(f"page {page} is outside 1..{len(doc)}")
            pdf_page = doc[page - 1]
            width, height = pdf_page.get_size()  # points
            # a page may declare any size (a 604-byte PDF with a 14,400-pt page rendered to 5.4 GB): cap it
            scale = min(scale, MAX_SIDE_PX / max(width, height, 1.0))
            image = pdf_page.render(scale=scale).to_pil().convert("RGB")
            boxes: list[Box] = []
            if snippet and pdf_page.get_rotation() == 0:
                left0, _, _, top0 = pdf_page.get_bbox()  # the effective crop box (get_cropbox ignores inheritance)
                text_page = pdf_page.get_textpage()
                n = text_page.count_chars()
                text = "".join(chr(raw.FPDFText_GetUnicode(text_page.raw, i) or 32) for i in range(n))
                for start, end in match_spans(text, snippet):
                    chars = [text_page.get_charbox(i) for i in range(start, end + 1)]
                    boxes += [((lft - left0) * scale, (top0 - tp) * scale, (rgt - left0) * scale, (top0 - btm) * scale)
                              for lft, btm, rgt, tp in _line_boxes(chars)]
            return PageImage(_draw(image, boxes), page, len(doc), boxes)
        finally:
            doc.close()


def _draw(image: Image, boxes: list[Box], pad: float = 2.0) -> Image:
    """``image`` with a highlighter stroke over ``boxes``: multiplied, so the text stays black."""
    from PIL import Image as PILImage
    from PIL import ImageChops, ImageDraw

    if not boxes:
        return image
    marker = PILImage.new("RGB", image.size, (255, 255, 255))
    draw = ImageDraw.Draw(marker)
    for left, top, right, bottom in boxes:
        draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=HIGHLIGHT_FILL)
    out = ImageChops.multiply(image, marker)
    draw = ImageDraw.Draw(out)
    for left, top, right, bottom in boxes:
        draw.rectangle((left - pad - 1, top - pad - 1, right + pad + 1, bottom + pad + 1), outline=HIGHLIGHT_EDGE, width=1)
    return out


def render_citation(pdf: Path | str, citation: Citation, *, scale: float = DEFAULT_SCALE,
                    max_pages: int = 2) -> list[PageImage]:
    """The page(s) a citation's snippet is on (at most ``max_pages``), with the snippet highlighted."""
    last = min(citation.page_end, citation.page + max_pages - 1)
    return [render_page(pdf, p, citation.snippet, scale=scale) for p in range(citation.page, last + 1)]
