"""indexing/loaders.py: pages in order, text encodings, folder expansion, and every bad file refused
with a DocumentError whose message names the file."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from indexing.loaders import SUPPORTED_SUFFIXES, DocumentError, LoadedDocument, content_hash, expand_paths, load_document
from model.errors import LlocoError

MB = 2**20
LIMIT = 50 * MB


def _load(path: Path, max_bytes: int = LIMIT) -> LoadedDocument:
    return load_document(path, max_bytes=max_bytes)


def _refused(path: Path, *, max_bytes: int = LIMIT, match: str) -> str:
    with pytest.raises(DocumentError) as info:
        _load(path, max_bytes)
    message = str(info.value)
    assert path.name in message, f"message does not name the file: {message!r}"
    assert re.search(match, message, re.IGNORECASE), f"{match!r} not in {message!r}"
    return message


def _norm(text: str) -> str:
    return " ".join(text.split())


def _encrypted_copy(src: Path, dst: Path, user_password: str) -> Path:
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=str(src))
    try:
        import cryptography  # noqa: F401

        writer.encrypt(user_password, owner_password="owner-pw", algorithm="AES-128")
    except ImportError:  # pragma: no cover - cryptography is a declared dependency
        writer.encrypt(user_password, owner_password="owner-pw", algorithm="RC4-128")
    with dst.open("wb") as fh:
        writer.write(fh)
    return dst


# --- good files -------------------------------------------------------------------------------

def test_pdf_pages_in_order_with_their_text(pdf_factory):
    texts = ["Alpha lighthouse keeper page one.", "Bravo honeybees dance on page two.",
             "Charlie tides rise on page three.", "Delta coffee from Yemen on page four."]
    path = pdf_factory("four.pdf", texts)
    doc = _load(path)
    assert isinstance(doc, LoadedDocument)
    assert len(doc.pages) == 4
    assert [_norm(p) for p in doc.pages] == texts
    assert doc.filename == "four.pdf"
    assert doc.path == path
    assert doc.size_bytes == path.stat().st_size
    assert doc.content_hash == content_hash(path.read_bytes())
    assert len(doc.content_hash) == 64


def test_pdf_with_a_blank_page_keeps_page_numbering(pdf_factory):
    path = pdf_factory("gap.pdf", ["First page words.", "", "Third page words."])
    doc = _load(path)
    assert len(doc.pages) == 3
    assert _norm(doc.pages[0]) == "First page words."
    assert doc.pages[1].strip() == ""
    assert _norm(doc.pages[2]) == "Third page words."


def test_txt_utf8(tmp_path):
    text = "Crème brûlée, naïve café — ünïcödé ✓\nsecond line"
    path = tmp_path / "notes.txt"
    path.write_text(text, encoding="utf-8")
    doc = _load(path)
    assert doc.pages == [text]
    assert doc.size_bytes == len(text.encode("utf-8"))


def test_txt_utf8_with_bom_drops_the_bom(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfhello world")
    assert _load(path).pages == ["hello world"]


def test_txt_latin1_falls_back(tmp_path):
    text = "Caf\xe9 cr\xe8me na\xefve \xa9 1999"
    path = tmp_path / "old.txt"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # the case under test really is not utf-8
    assert _load(path).pages == [text]


@pytest.mark.parametrize("suffix", [".md", ".markdown", ".MD"])
def test_markdown_is_one_page(tmp_path, suffix):
    text = "# Title\n\nSome *markdown* text.\n\n## Section\n\n- item one\n- item two\n"
    path = tmp_path / f"readme{suffix}"
    path.write_text(text, encoding="utf-8")
    doc = _load(path)
    assert doc.pages == [text]


def test_supported_suffixes():
    assert set(SUPPORTED_SUFFIXES) >= {".pdf", ".txt", ".md"}
    assert ".docx" not in SUPPORTED_SUFFIXES


def test_content_hash_is_identity_of_bytes_not_name(tmp_path, pdf_factory):
    a = pdf_factory("a.pdf", ["Same bytes, different names."])
    b = tmp_path / "completely-different-name.pdf"
    b.write_bytes(a.read_bytes())
    c = pdf_factory("c.pdf", ["Different bytes."])
    da, db, dc = _load(a), _load(b), _load(c)
    assert da.content_hash == db.content_hash
    assert da.filename != db.filename
    assert dc.content_hash != da.content_hash
    t1, t2 = tmp_path / "x.txt", tmp_path / "y.md"
    t1.write_text("identical text")
    t2.write_text("identical text")
    assert _load(t1).content_hash == _load(t2).content_hash


def test_pdf_encrypted_with_empty_user_password_still_loads(tmp_path, pdf_factory):
    plain = pdf_factory("plain.pdf", ["Open sesame page one.", "Page two is here."])
    enc = _encrypted_copy(plain, tmp_path / "owner-only.pdf", "")
    from pypdf import PdfReader

    assert PdfReader(str(enc)).is_encrypted
    doc = _load(enc)
    assert [_norm(p) for p in doc.pages] == ["Open sesame page one.", "Page two is here."]


def test_size_exactly_at_limit_is_accepted(tmp_path):
    path = tmp_path / "edge.txt"
    path.write_text("x" * 100)
    assert _load(path, max_bytes=100).pages == ["x" * 100]


# --- bad files --------------------------------------------------------------------------------

def test_document_error_is_a_lloco_error():
    assert issubclass(DocumentError, LlocoError)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_pdf_is_refused(tmp_path, pdf_factory, fraction):
    data = pdf_factory("whole.pdf", ["Some text that will be cut off.", "More text."]).read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(data[: int(len(data) * fraction)])
    _refused(path, match="corrupt|unreadable")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_garbage_with_pdf_header_is_refused(tmp_path, seed):
    rng = random.Random(seed)
    path = tmp_path / "garbage.pdf"
    path.write_bytes(b"%PDF-1.4\n" + bytes(rng.randrange(256) for _ in range(4000)))
    _refused(path, match="corrupt|unreadable")


def test_pdf_with_user_password_is_refused(tmp_path, pdf_factory):
    plain = pdf_factory("plain.pdf", ["Top secret text."])
    enc = _encrypted_copy(plain, tmp_path / "locked.pdf", "secret")
    message = _refused(enc, match="encrypted")
    assert "password" in message


def test_empty_file_is_refused(tmp_path):
    for name in ("empty.pdf", "empty.txt"):
        path = tmp_path / name
        path.write_bytes(b"")
        _refused(path, match="empty")


def test_text_named_pdf_is_refused(tmp_path):
    path = tmp_path / "notreally.pdf"
    path.write_text("This is plain text pretending to be a PDF.\n" * 20)
    _refused(path, match="not a PDF")


def test_png_named_pdf_is_refused(tmp_path):
    path = tmp_path / "image.pdf"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    _refused(path, match="not a PDF")


def test_binary_named_txt_is_refused(tmp_path):
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100))
    _refused(path, match="binary")


@pytest.mark.parametrize("name", ["report.docx", "Makefile", "data.csv"])
def test_unsupported_suffix_is_refused(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"PK\x03\x04 some bytes")
    message = _refused(path, match="unsupported")
    assert ".pdf" in message  # says what is supported


def test_pdf_without_text_is_refused(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 80, 40)
    path = tmp_path / "drawing.pdf"
    pdf.output(str(path))
    _refused(path, match="no extractable text")


def test_whitespace_only_text_is_refused(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text("   \n\n\t  \n")
    _refused(path, match="no text")


def test_file_over_size_limit_is_refused(tmp_path, pdf_factory):
    path = pdf_factory("big.pdf", ["Words " * 200])
    size = path.stat().st_size
    _refused(path, max_bytes=size - 1, match="limit")
    assert _load(path, max_bytes=size).pages  # at the limit it is fine
    txt = tmp_path / "big.txt"
    txt.write_text("y" * 101)
    _refused(txt, max_bytes=100, match="limit")


@pytest.mark.parametrize(("encoding", "bom"), [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"),
                                             ("utf-16-le", b""), ("utf-16-be", b""), ("utf-32-le", b"\xff\xfe\x00\x00")])
def test_utf16_and_utf32_text_is_read_not_refused_as_binary(tmp_path, encoding, bom):
    """Issue 12, bug 12: Windows tools write UTF-16 (with or without a byte-order mark)."""
    text = "Revenue grew 14.3 % to €9.3 bn — Q1 2023\nSecond line"
    path = tmp_path / "wide.txt"
    path.write_bytes(bom + text.encode(encoding))
    assert _load(path).pages == [text]


def test_windows_1252_quotes_and_dashes_become_characters_not_controls(tmp_path):
    text = "\u201cSmart\u201d quotes \u2013 and \u20ac5 \u2022 bullets"
    path = tmp_path / "legacy.txt"
    path.write_bytes(text.encode("cp1252"))
    assert _load(path).pages == [text]


def test_control_characters_and_late_nul_bytes_are_dropped(tmp_path):
    """Bug 5: NUL bytes were stored (and made PostgreSQL refuse the row)."""
    path = tmp_path / "nul.txt"
    path.write_bytes(b"a" * 9000 + b"fine\x00 text\x07 here\tand\nmore")  # past the 8 KB binary sniff
    assert _load(path).pages == ["a" * 9000 + "fine text here\tand\nmore"]


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no FIFOs on this platform")
def test_pipes_devices_and_broken_links_are_named_as_such(tmp_path):
    import os

    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    _refused(fifo, match="not a regular file")  # never opened: reading a FIFO would block
    with pytest.raises(DocumentError, match="not a regular file"):
        _load(Path("/dev/zero"))
    link = tmp_path / "gone.txt"
    link.symlink_to(tmp_path / "deleted.txt")
    _refused(link, match="broken symbolic link")
    assert {p.name for p in expand_paths([tmp_path])} == {"pipe.txt", "gone.txt"}  # kept, each to get its error


def test_a_pdf_that_inflates_without_end_is_refused_not_a_traceback(tmp_path):
    """Bug 4: a decompression bomb (a small file whose content stream inflates past pypdf's limit)."""
    import zlib

    packer = zlib.compressobj(9)
    chunk = b"BT /F1 12 Tf (A) Tj ET " * 2**20  # 24 MB of text operators, x4: past pypdf's 75 MB limit
    stream = b"".join(packer.compress(chunk) for _ in range(4)) + packer.flush()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
               b"/Contents 4 0 R >>",
               b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    body, offsets = b"%PDF-1.4\n", []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 6\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    body += b"trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    path = tmp_path / "bomb.pdf"
    path.write_bytes(body)
    assert path.stat().st_size < MB
    _refused(path, match="decompresses past the safety limit")


def test_missing_path_is_refused(tmp_path):
    path = tmp_path / "nowhere" / "ghost.pdf"
    _refused(path, match="no such file")


def test_folder_is_not_a_document(tmp_path):
    folder = tmp_path / "folder.pdf"
    folder.mkdir()
    _refused(folder, match="no such file")


# --- expand_paths -----------------------------------------------------------------------------

def test_expand_paths_recursive_sorted_skips_hidden(tmp_path):
    root = tmp_path / "docs"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "sub" / ".cache").mkdir()
    files = ["b.txt", "a.pdf", "sub/c.md", "sub/deeper/d.txt", "report.docx"]
    for rel in files:
        (root / rel).write_text("x")
    for rel in [".hidden.txt", ".git/config", "sub/.secret.md", "sub/.cache/e.txt"]:
        (root / rel).write_text("hidden")
    out = expand_paths([root])
    assert out == sorted(out)
    assert {p.relative_to(root).as_posix() for p in out} == set(files)
    assert root / "report.docx" in out  # unsupported files are kept so they get their own error
    assert all(p.is_file() for p in out)


def test_expand_paths_files_kept_as_given_in_order(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "z.txt").write_text("z")
    (folder / "y.txt").write_text("y")
    lone = tmp_path / "lone.txt"
    lone.write_text("l")
    missing = tmp_path / "missing.pdf"
    hidden_given = tmp_path / ".explicit.txt"
    hidden_given.write_text("h")
    out = expand_paths([lone, folder, missing, hidden_given])
    assert out == [lone, folder / "y.txt", folder / "z.txt", missing, hidden_given]


def test_expand_paths_hidden_parent_of_root_does_not_hide_everything(tmp_path):
    root = tmp_path / ".config" / "docs"
    root.mkdir(parents=True)
    (root / "a.txt").write_text("a")
    assert expand_paths([root]) == [root / "a.txt"]


def test_expand_paths_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert expand_paths([tmp_path / "empty"]) == []
    assert expand_paths([]) == []


def test_expanded_folder_loads_or_refuses_each_file(tmp_path, pdf_factory):
    root = tmp_path / "mixed"
    root.mkdir()
    pdf_factory("mixed/a.pdf", ["A pdf page."])
    (root / "b.txt").write_text("A text file.")
    (root / "c.docx").write_bytes(b"PK\x03\x04")
    ok, errors = [], []
    for path in expand_paths([root]):
        try:
            ok.append(_load(path).filename)
        except DocumentError as exc:
            errors.append(str(exc))
    assert ok == ["a.pdf", "b.txt"]
    assert len(errors) == 1 and "c.docx" in errors[0]
