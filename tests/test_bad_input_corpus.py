"""The bad-input corpus (issue 12): every case is built here, run through the service into a collection
that already holds a document, and must give a clear error or a correct result while the stored
document stays whole (its chunks, its answer, the collection's consistency check). The two cases that
could take the machine's memory (a decompression bomb, 2,000 blank pages) run in a child process
under a hard address-space limit, so exceeding the bound fails the test instead of the machine."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from model.errors import InvalidInputError, NotFoundError
from tests.fakes import make_pdf

ANCHOR = "The harbour lighthouse at Pellow Point burns whale oil and was built in 1781. " * 8
MEMORY_LIMIT = 1536 * 2**20  # the child's whole address space, interpreter and pypdf included


# --- files ------------------------------------------------------------------------------------

def _pdf_bytes(tmp: Path) -> bytes:
    return make_pdf(tmp / "src.pdf", ["Copper prices rose in March. " * 20, "Tin prices fell in May. " * 20]).read_bytes()


def _raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF file around ``objects`` (numbered from 1; the first is the catalog), with a correct xref."""
    body, offsets = b"%PDF-1.4\n", []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return body + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def bomb_pdf(path: Path) -> Path:
    """Under 1 MB on disk; its one content stream inflates to ~100 MB of text operators."""
    packer = zlib.compressobj(9)
    chunk = b"BT /F1 12 Tf (A) Tj ET " * 2**20
    stream = b"".join(packer.compress(chunk) for _ in range(4)) + packer.flush()
    path.write_bytes(_raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]))
    return path


def blank_pages_pdf(path: Path, pages: int = 2000) -> Path:
    """``pages`` empty pages sharing one page dictionary's shape (a few hundred KB)."""
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages)]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"] * pages
    path.write_bytes(_raw_pdf(objects))
    return path


def _encrypted(tmp: Path, password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(make_pdf(tmp / "plain.pdf", ["Secret tin figures. " * 20])))
    writer.encrypt(user_password=password, owner_password="owner")
    out = tmp / "enc.pdf"
    writer.write(out)
    return out.read_bytes()


def _image_only(tmp: Path) -> bytes:
    from fpdf import FPDF
    from PIL import Image

    Image.new("RGB", (200, 80), "white").save(tmp / "scan.png")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(tmp / "scan.png"), x=10, y=10, w=100)
    pdf.output(str(tmp / "scan.pdf"))
    return (tmp / "scan.pdf").read_bytes()


@dataclass(frozen=True)
class FileCase:
    name: str  # the file's name in the collection
    make: Callable[[Path, Path], None]  # (target path, scratch folder) -> writes the file
    status: str  # what ingestion records: ingested | failed | skipped
    error: str | None = None  # a regex the recorded reason must match
    text: str | None = None  # a phrase the stored text must hold (a correct result, not just "ingested")


def _write(data: bytes | Callable[[Path], bytes]) -> Callable[[Path, Path], None]:
    return lambda path, tmp: path.write_bytes(data(tmp) if callable(data) else data)


FILE_CASES = [
    FileCase("zero.pdf", _write(b""), "failed", "the file is empty"),
    FileCase("zero.txt", _write(b""), "failed", "the file is empty"),
    FileCase("truncated.pdf", _write(lambda t: _pdf_bytes(t)[:400]), "failed", "corrupt or unreadable PDF|no extractable text"),
    FileCase("random.pdf", _write(os.urandom(4096)), "failed", r"not a PDF \(no %PDF header\)"),
    FileCase("text-named.pdf", _write(b"Just some words, not a PDF at all.\n" * 20), "failed", "not a PDF"),
    FileCase("header-only.pdf", _write(b"%PDF-1.7\n" + os.urandom(2048)), "failed", "corrupt or unreadable PDF|no extractable text"),
    FileCase("encrypted.pdf", _write(lambda t: _encrypted(t, "s3cret")), "failed", "encrypted with a password"),
    FileCase("empty-password.pdf", _write(lambda t: _encrypted(t, "")), "ingested", text="Secret tin figures"),
    FileCase("scan.pdf", _write(_image_only), "failed", "no extractable text"),
    FileCase("binary.txt", _write(b"\x00\x01\x02\x03" * 1000), "failed", "binary data"),
    FileCase("whitespace.txt", _write(b" \n\t\r\n   \n" * 100), "failed", "no text"),
    FileCase("whitespace.md", _write("\u00a0 \u2003\n\n".encode() * 50), "failed", "no text"),
    FileCase("cp1252.txt", _write("Caf\u00e9 cr\u00e8me costs \u20ac4 \u2014 \u201cfresh\u201d. ".encode("cp1252") * 20),
             "ingested", text="Caf\u00e9 cr\u00e8me costs \u20ac4 \u2014 \u201cfresh\u201d"),
    FileCase("utf16.txt", _write("Zinc output doubled in 2019. ".encode("utf-16") * 20), "ingested", text="Zinc output doubled"),
    FileCase("utf16-nobom.txt", _write("Nickel output halved in 2020. ".encode("utf-16-le") * 20), "ingested",
             text="Nickel output halved"),
    # a NUL within the first 8 KB marks a binary file (git's rule); stray NULs later are dropped
    FileCase("nul-early.txt", _write(b"Lead\x00 ingots\x00 weigh 40 kg. " * 30), "failed", "binary data"),
    FileCase("nul-late.txt", _write(b"Copper wire. " * 700 + b"Lead\x00 ingots\x00 weigh 40 kg. " * 30), "ingested",
             text="Lead ingots weigh 40 kg"),
    FileCase("bad-bom.txt", _write(b"\xff\xfe" + b"\x00\xd8" * 50), "failed", "not valid UTF-16"),
    FileCase("no-spaces.txt", _write(b"tungsten" * 40_000), "ingested", text="tungstentungsten"),
    FileCase("report.docx", _write(b"PK\x03\x04 not really"), "failed", "unsupported file type .docx"),
    FileCase("noext", _write(b"words words words"), "failed", r"unsupported file type \(none\)"),
    FileCase("R\u00e9sum\u00e9 \u5831\u544a \U0001f680.txt", _write("Unicode names are kept. ".encode() * 20), "ingested",
             text="Unicode names are kept"),
    FileCase("line\nbreak.txt", _write(b"A name with a line break. " * 20), "ingested", text="line break"),
    FileCase("-rf.txt", _write(b"A name that looks like an option. " * 20), "ingested", text="looks like an option"),
    FileCase("x" * 200 + ".txt", _write(b"A very long file name. " * 20), "ingested", text="very long file name"),
    FileCase("anchor-copy.txt", _write(ANCHOR.encode()), "skipped"),  # the same bytes under another name
    FileCase("too-big.txt", _write(b"big " * 400_000), "failed", "over the 1 MB limit"),
]


def _special(kind: str) -> Callable[[Path, Path], None]:
    def make(path: Path, tmp: Path) -> None:
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dangling":
            path.symlink_to(tmp / "deleted-long-ago.txt")
        elif kind == "folder":
            path.mkdir()

    return make


SPECIAL_CASES = [
    FileCase("pipe.txt", _special("fifo"), "failed", "not a regular file"),
    FileCase("gone.txt", _special("dangling"), "failed", "broken symbolic link"),
    FileCase("folder.pdf", _special("folder"), "skipped"),  # a folder is expanded: this one holds nothing
]


# --- the collection every case runs against -----------------------------------------------------

@pytest.fixture
def anchored(service, tmp_path):
    """``service`` with collection 'c' holding one document, and a check that it is still whole."""
    anchor = tmp_path / "anchor.txt"
    anchor.write_text(ANCHOR)
    service.create_collection("c")
    [result] = service.ingest("c", [anchor])
    assert result.status == "ingested"

    def still_whole() -> None:
        docs = {d.filename: d for d in service.list_documents("c")}
        assert docs["anchor.txt"].status == "ready" and docs["anchor.txt"].n_chunks == result.n_chunks
        assert service.check_collection("c") == []
        answer = service.ask("c", "When was the Pellow Point lighthouse built?", mode="rag", top_k=1).read()
        assert answer.citations and answer.citations[0].document == "anchor.txt"

    return service, still_whole


def _stored_text(service, document_id: int) -> str:
    from sqlalchemy import select

    from indexing.catalog import Page

    with service.sessions() as session:
        return "".join(session.scalars(select(Page.text).where(Page.document_id == document_id).order_by(Page.page_no)))


@pytest.mark.parametrize("case", FILE_CASES + SPECIAL_CASES, ids=lambda c: c.name.replace("\n", "\\n")[:40])
def test_a_bad_file_gets_a_clear_result_and_loses_nothing(anchored, case, tmp_path, monkeypatch):
    service, still_whole = anchored
    monkeypatch.setattr(service.settings, "max_file_mb", 1.0)
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / case.name
    case.make(path, tmp_path)
    results = service.ingest("c", [path])
    if case.name == "folder.pdf":
        assert results == []  # an empty folder: nothing to ingest, nothing recorded
    else:
        [result] = results
        assert result.status == case.status, result.error
        if case.error:
            assert result.error and re.search(case.error, result.error), result.error
            assert "Traceback" not in result.error
        if case.error and path.is_file():  # a file that could be read is recorded, failed, with its reason
            failed = {d.filename: d for d in service.list_documents("c")}[case.name]
            assert failed.status == "failed" and failed.error == result.error
        if case.text:
            assert case.text in _stored_text(service, result.document_id)
    still_whole()


def test_a_batch_mixing_every_bad_file_with_good_ones_ingests_the_good_ones(anchored, tmp_path, monkeypatch):
    service, still_whole = anchored
    monkeypatch.setattr(service.settings, "max_file_mb", 1.0)
    folder = tmp_path / "batch"
    folder.mkdir()
    for case in FILE_CASES:
        case.make(folder / case.name, tmp_path)
    (folder / "good.txt").write_text("Good files in a bad batch are ingested. " * 10)
    results = {Path(r.path).name: r.status for r in service.ingest("c", [folder])}
    assert results["good.txt"] == "ingested"
    assert results == {**{c.name: c.status for c in FILE_CASES}, "good.txt": "ingested"}
    still_whole()


def test_same_name_different_content_keeps_both(anchored, tmp_path):
    service, still_whole = anchored
    for sub, text in (("a", "Version one of the memo. " * 20), ("b", "Version two of the memo. " * 20)):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "memo.txt").write_text(text)
        assert service.ingest("c", [tmp_path / sub / "memo.txt"])[0].status == "ingested"
    assert [d.filename for d in service.list_documents("c")].count("memo.txt") == 2
    still_whole()


def test_a_missing_path_is_reported(anchored, tmp_path):
    service, still_whole = anchored
    [result] = service.ingest("c", [tmp_path / "nowhere" / "ghost.pdf"])
    assert result.status == "failed" and "no such file" in result.error
    still_whole()


# --- questions, top-k and collection names ---------------------------------------------------------

QUESTION_CASES = [
    ("", 4, InvalidInputError, "empty"),
    ("   \n\t ", 4, InvalidInputError, "empty"),
    ("why? " * 20_000, 4, InvalidInputError, "at most 4,000"),
    ("\x00\x01\x02", 4, InvalidInputError, "empty"),
    ("When was it built?", 0, InvalidInputError, "top-k"),
    ("When was it built?", 101, InvalidInputError, "top-k"),
    ("When was it built?", -3, InvalidInputError, "top-k"),
    ("When was it built?", 10**9, InvalidInputError, "top-k"),
]


@pytest.mark.parametrize(("question", "top_k", "error", "match"), QUESTION_CASES,
                         ids=["empty", "blank", "100k-chars", "control-chars", "top-k-0", "top-k-101", "top-k-neg",
                              "top-k-huge"])
def test_a_bad_question_is_refused_clearly(anchored, question, top_k, error, match):
    service, still_whole = anchored
    with pytest.raises(error, match=match):
        service.ask("c", question, mode="rag", top_k=top_k).read()
    still_whole()


def test_a_question_to_a_missing_or_empty_collection(anchored):
    service, still_whole = anchored
    with pytest.raises(NotFoundError, match="no collection named"):
        service.ask("nope", "anything?", mode="rag").read()
    service.create_collection("empty")
    with pytest.raises(InvalidInputError, match="no documents"):
        service.ask("empty", "anything?", mode="rag").read()
    still_whole()


BAD_NAMES = ["a/b", "..", ".", "../etc", "it's", 'say "hi"', "x" * 300, "", " lead", "new\nline", "tab\tname",
             "semi;colon", "R\u00e9sum\u00e9", "-dash"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n)[:20])
def test_a_bad_collection_name_is_refused_clearly(anchored, name):
    service, still_whole = anchored
    with pytest.raises(InvalidInputError, match="collection name"):
        service.create_collection(name)
    assert [c.name for c in service.list_collections()] == ["c"]
    still_whole()


def test_a_duplicate_collection_name_is_refused_and_keeps_the_first(anchored):
    service, still_whole = anchored
    with pytest.raises(InvalidInputError, match="already exists"):
        service.create_collection("c")
    still_whole()


# --- resource bounds: in a child process under a hard memory limit ---------------------------------

_CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from indexing.loaders import DocumentError, load_document
try:
    load_document(sys.argv[1], max_bytes=200 * 2**20)
    outcome = "loaded"
except DocumentError as exc:
    outcome = str(exc)
print(json.dumps({{"outcome": outcome, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


@pytest.mark.parametrize(("make", "match"), [(bomb_pdf, "decompresses past the safety limit"),
                                             (blank_pages_pdf, "no extractable text")], ids=["bomb", "2000-blank-pages"])
def test_bombs_are_refused_within_a_memory_bound(make, match, tmp_path):
    path = make(tmp_path / "case.pdf")
    assert path.stat().st_size < 2**20  # small on disk
    repo = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, "-c", _CHILD.format(limit=MEMORY_LIMIT), str(path)], cwd=repo,
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-2000:]  # a MemoryError past the limit fails here
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["outcome"] != "loaded" and match in result["outcome"], result
    print(f"{path.name}: peak resident memory {result['peak_mb']:.0f} MB")
