"""Scanned pages (issue 13, item 1): pages without a usable text layer — image-only, or a garbage
layer — are read by Tesseract and marked as OCR'd in the catalog and in citations; without an OCR
engine they are reported as skipped, never silently empty; the demo's PDFs rasterised into scans
(11 pages) answer the demo questions citing the same pages as their text originals."""

from __future__ import annotations

import json

import pytest

from app.core.demo import DEMO_DIR
from indexing import ocr
from indexing.loaders import DocumentError, load_document

needs_tesseract = pytest.mark.skipif(ocr.engine() is None, reason="tesseract is not installed (`make ocr` as root)")
MB = 2**20


def rasterised(source, target, *, dpi: int = 150):
    """``source`` PDF as an image-only PDF (each page a picture: what a scanner makes)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(source)
    images = [document[i].render(scale=dpi / 72).to_pil().convert("RGB") for i in range(len(document))]
    document.close()
    images[0].save(target, save_all=True, append_images=images[1:], resolution=dpi)
    return target


def text_image_pdf(target, lines: list[str], *, garbage_layer: str | None = None):
    """A page whose text is a picture; ``garbage_layer``: a text layer of that junk over it."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (1400, 120 + 60 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=36)
    for i, line in enumerate(lines):
        draw.text((40, 40 + 60 * i), line, fill="black", font=font)
    png = target.with_suffix(".png")
    image.save(png)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(png), x=10, y=10, w=190)
    if garbage_layer:
        pdf.set_font("Helvetica", size=8)
        pdf.set_xy(10, 250)
        pdf.multi_cell(0, 4, garbage_layer)
    pdf.output(str(target))
    return target


LINES = ["The keeper of Pellow Point lighthouse", "lit the lamp at dusk every evening", "from 1821 until 1867."]


def test_a_garbage_text_layer_is_recognised():
    assert ocr.is_garbage("") and ocr.is_garbage("   \n ")
    assert ocr.is_garbage("(cid:12)(cid:7)(cid:44)(cid:3)(cid:19)(cid:5)(cid:9)(cid:1) " * 5)
    assert ocr.is_garbage("#$%&*@!~^ ¤§¶ " * 10) and ocr.is_garbage("\ue000\ue001\ue002 " * 20)
    assert not ocr.is_garbage("The keeper lit the lamp at dusk every evening from 1821.")
    assert not ocr.is_garbage("Page 7")


@needs_tesseract
def test_an_image_only_page_is_read_by_ocr_and_marked(service, tmp_path):
    pdf = text_image_pdf(tmp_path / "scan.pdf", LINES)
    loaded = load_document(pdf, max_bytes=10 * MB)
    assert loaded.ocr_pages == (1,) and loaded.skipped_pages == ()
    assert "lit the lamp at dusk" in " ".join(loaded.pages[0].split())
    service.settings.retrieval = "bm25"
    service.create_collection("c")
    [result] = service.ingest("c", [pdf])
    assert result.status == "ingested" and result.ocr_pages == (1,)
    [citation] = service.ask("c", "When did the keeper light the lamp?", mode="rag", top_k=1).read().citations
    assert citation.ocr and citation.page == 1


@needs_tesseract
def test_a_garbage_text_layer_is_replaced_by_ocr(tmp_path):
    pdf = text_image_pdf(tmp_path / "junk.pdf", LINES, garbage_layer="#$%&*@!~^ |{}<> " * 3)
    loaded = load_document(pdf, max_bytes=10 * MB)
    assert loaded.ocr_pages == (1,) and "Pellow Point" in loaded.pages[0]


def test_without_an_ocr_engine_scanned_pages_are_reported_not_silently_empty(service, tmp_path, monkeypatch, pdf_factory):
    from fpdf import FPDF

    monkeypatch.setattr(ocr, "engine", lambda: None)
    scan = text_image_pdf(tmp_path / "scan.pdf", LINES)
    with pytest.raises(DocumentError, match="no OCR engine"):
        load_document(scan, max_bytes=10 * MB)
    mixed = FPDF()  # page 1 text, page 2 a picture of text
    mixed.add_page()
    mixed.set_font("Helvetica", size=11)
    mixed.multi_cell(0, 6, "The first page has a text layer about harbours and their pilots. " * 5)
    mixed.add_page()
    mixed.image(str(scan.with_suffix(".png")), x=10, y=10, w=190)
    mixed.output(str(tmp_path / "mixed.pdf"))
    service.create_collection("c")
    [result] = service.ingest("c", [tmp_path / "mixed.pdf"])
    assert result.status == "ingested" and result.skipped_pages == (2,) and result.ocr_pages == ()


def test_blank_pages_are_neither_read_nor_reported(tmp_path, pdf_factory):
    from tests.test_bad_input_corpus import blank_pages_pdf

    with pytest.raises(DocumentError, match="its pages are blank"):
        load_document(blank_pages_pdf(tmp_path / "blank.pdf", pages=50), max_bytes=10 * MB)


@needs_tesseract
@pytest.mark.integration
def test_the_scanned_demo_answers_like_its_text_original(service, tmp_path):
    """lighthouses.pdf (6 pages) and honeybees.pdf (5) as scans: each demo question about them cites
    the same document and page as from the text originals (BM25: the tiny test model's embeddings
    carry no meaning)."""
    service.settings.retrieval = "bm25"
    originals = [DEMO_DIR / "lighthouses.pdf", DEMO_DIR / "honeybees.pdf"]
    (tmp_path / "scans").mkdir()
    scans = [rasterised(p, tmp_path / "scans" / p.name) for p in originals]
    service.create_collection("text")
    service.create_collection("scan")
    service.ingest("text", originals)
    results = service.ingest("scan", scans)
    assert [len(r.ocr_pages) for r in results] == [6, 5]
    questions = [json.loads(line) for line in (DEMO_DIR / "questions.jsonl").read_text().splitlines()]
    asked = [q for q in questions if q["document"] in ("lighthouses.pdf", "honeybees.pdf")]
    assert len(asked) == 9  # every demo question about these two documents
    for q in asked:
        [a] = service.ask("text", q["question"], mode="rag", top_k=1).read().citations
        [b] = service.ask("scan", q["question"], mode="rag", top_k=1).read().citations
        assert (b.document, b.page) == (a.document, a.page) == (q["document"], q["page"]), q["question"]
        assert b.ocr and not a.ocr
