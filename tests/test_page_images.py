"""Page images of citations (app/core/page_images.py) and the kept original PDFs (app/core/originals.py):
rendering real PDFs, locating the snippet, highlighting it, and the files' lifecycle."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.citations import Citation
from app.core.demo import DEMO_DIR
from app.core.page_images import _line_boxes, match_spans, render_citation, render_page
from tests.fakes import make_pdf

LIGHTHOUSES = DEMO_DIR / "lighthouses.pdf"
PHAROS = ("The first purpose-built tower of real size was the Pharos of Alexandria, raised on the small island of "
          "Pharos off the Egyptian coast.")


def _mean_rgb(image, box) -> np.ndarray:
    left, top, right, bottom = (int(v) for v in box)
    return np.asarray(image)[top:bottom, left:right].reshape(-1, 3).mean(axis=0)


def test_the_snippet_is_highlighted_where_it_is_on_the_page():
    page = render_page(LIGHTHOUSES, 1, PHAROS, scale=1.5)
    assert (page.page, page.n_pages) == (1, 6) and page.highlighted
    width, height = page.image.size
    assert (width, height) == (round(595.28 * 1.5), round(841.89 * 1.5))
    assert len(page.boxes) == 2  # the sentence runs over two lines: one box each
    for left, top, right, bottom in page.boxes:
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
        assert 10 < bottom - top < 30  # a line of 11-point text at 108 dpi
        red, _, blue = _mean_rgb(page.image, (left, top, right, bottom))
        assert red > 150 and blue < red - 60  # yellow marker under black text
    # the sentence is in the first paragraph, under the heading: the upper fifth of the page
    assert all(top < height / 5 for _, top, _, _ in page.boxes)
    plain = render_page(LIGHTHOUSES, 1, None, scale=1.5)
    assert not plain.highlighted
    top_box = page.boxes[0]
    assert _mean_rgb(plain.image, top_box)[2] > _mean_rgb(page.image, top_box)[2] + 40  # unmarked: whiter


def test_a_snippet_that_is_not_on_the_page_draws_nothing():
    page = render_page(LIGHTHOUSES, 2, PHAROS)
    assert page.page == 2 and not page.highlighted
    with pytest.raises(ValueError, match="outside 1..6"):
        render_page(LIGHTHOUSES, 7)


def test_matching_ignores_spacing_case_and_hyphenation_and_falls_back_to_pieces():
    page_text = "The light-\r\nhouse KEEPER lit\r\nthe lamp every evening. Bees dance."
    [(start, end)] = match_spans(page_text, "the lighthouse keeper lit the lamp")
    assert page_text[start:end + 1] == "The light-\r\nhouse KEEPER lit\r\nthe lamp"
    # one word differs (a different extraction): the rest is still found, in pieces
    spans = match_spans(page_text, "The lighthouse keeper lit the lamp every single evening tonight")
    assert spans and page_text[spans[0][0]:spans[0][1] + 1].startswith("The light")
    assert match_spans(page_text, "nothing like it at all here") == []
    assert match_spans("", "x") == [] and match_spans(page_text, "") == []


def test_character_boxes_merge_into_one_box_per_line():
    """A comma sits lower than its letters but on their line; the next line starts a new box."""
    rock_comma_and = [(60.4, 606.2, 63.2, 612.1), (75.5, 606.2, 80.3, 614.0), (81.3, 604.5, 82.4, 607.3),
                      (83.4, 606.2, 86.4, 606.2), (87.6, 606.0, 93.0, 612.1)]  # ... 'k', ',', ' ' (no height), 'a'
    next_line = [(59.7, 586.8, 65.0, 597.1), (66.0, 586.8, 70.0, 597.1)]
    assert _line_boxes(rock_comma_and + next_line) == [(60.4, 604.5, 93.0, 614.0), (59.7, 586.8, 70.0, 597.1)]


def test_a_citation_over_two_pages_renders_both(tmp_path):
    pdf = make_pdf(tmp_path / "two.pdf", ["The keeper lit the lamp every evening.", "Bees dance to tell their sisters."])
    citation = Citation("two.pdf", 1, 1, 2, "The keeper lit the lamp every evening. Bees dance to tell their sisters.",
                        0.9, 1, 0, 70)
    pages = render_citation(pdf, citation)
    assert [(p.page, p.highlighted) for p in pages] == [(1, True), (2, True)]


@pytest.fixture
def notes(service):
    service.create_collection("notes")
    return service


def _citation(service, name: str, question: str) -> Citation:
    return service.retrieve(name, question, top_k=1)[0][0]


def test_an_uploaded_pdf_is_kept_so_its_pages_render_after_the_upload_is_gone(notes, tmp_path):
    (tmp_path / "upload").mkdir()
    upload = make_pdf(tmp_path / "upload" / "keeper.pdf", ["The lighthouse keeper lit the lamp every evening."])
    [result] = notes.ingest("notes", [upload])
    upload.unlink()  # the web UI's temporary upload folder is removed after ingestion
    kept = notes.document_file(result.document_id)
    assert kept is not None and kept.is_relative_to(notes.settings.home / "originals") and kept.suffix == ".pdf"
    [page] = notes.citation_pages(_citation(notes, "notes", "What did the keeper light?"))
    assert page.page == 1 and page.highlighted


def test_text_documents_have_no_page_image(notes, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("The lighthouse keeper lit the lamp every evening.")
    [result] = notes.ingest("notes", [note])
    assert notes.document_file(result.document_id) is None
    assert notes.citation_pages(_citation(notes, "notes", "keeper lamp")) == []
    assert not (notes.settings.home / "originals").exists()


def test_kept_files_are_shared_by_equal_bytes_and_removed_with_the_last_document(notes, tmp_path):
    pdf = make_pdf(tmp_path / "same.pdf", ["Tides rise and fall twice a day because of the moon."])
    notes.create_collection("other")
    [a] = notes.ingest("notes", [pdf])
    [b] = notes.ingest("other", [pdf])
    kept = notes.document_file(a.document_id)
    assert kept == notes.document_file(b.document_id)
    notes.delete_document("notes", a.document_id)
    assert kept.is_file()  # still used by 'other'
    notes.delete_collection("other")
    assert not kept.exists()


def test_a_pdf_ingested_before_originals_were_kept_is_found_at_its_source(notes, tmp_path):
    pdf = make_pdf(tmp_path / "old.pdf", ["Coffee was first drunk in Yemen."])
    [result] = notes.ingest("notes", [pdf])
    kept = notes.document_file(result.document_id)
    kept.unlink()  # as if ingested by an older lloco
    again = notes.document_file(result.document_id)
    assert again == kept and again.is_file()  # re-kept from the source path, whose bytes still match
    again.unlink()
    pdf.write_bytes(make_pdf(tmp_path / "changed.pdf", ["Something else."]).read_bytes())
    assert notes.document_file(result.document_id) is None  # other bytes now: not this document
    assert notes.citation_pages(_citation(notes, "notes", "Where was coffee first drunk?")) == []


def test_a_giant_declared_page_renders_at_a_bounded_size(tmp_path):
    """Issue 12, bug 10: a tiny PDF declaring a 14,400-pt page rendered to 5.4 GB in 34 s."""
    from fpdf import FPDF

    from app.core.page_images import MAX_SIDE_PX, render_page

    pdf = FPDF(unit="pt", format=(14_400, 14_400))
    pdf.add_page()
    pdf.set_font("Helvetica", size=400)
    pdf.text(1000, 2000, "The keeper lit the lamp.")
    path = tmp_path / "giant.pdf"
    pdf.output(str(path))
    shown = render_page(path, 1, "The keeper lit the lamp.")
    assert max(shown.image.size) <= MAX_SIDE_PX
    assert shown.boxes  # the highlight is still placed, at the reduced scale
    assert all(0 <= x <= MAX_SIDE_PX for box in shown.boxes for x in box)
