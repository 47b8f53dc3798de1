"""Documents translated in place: their text out, its translation back in, structure kept.

Each format gives its text as a list of segments (a paragraph, a heading, a table cell, a list
item, a subtitle line, a run of HTML text) and takes their translations back in the same order:

    translated = translate_document(data, ".docx", translate)   # translate: list[str] -> list[str]

The formats are those LibreTranslate accepts that a Python library reads and writes faithfully:
.txt, .html (BeautifulSoup), .srt (srt), .docx (python-docx), .odt (odfpy). Not .pdf (no
library writes a PDF's layout back), nor .pptx, .epub (not done yet). A paragraph is
translated whole and written back into its first run of text, which keeps its style (heading,
list, table cell, the first run's bold or italics); formatting that changes inside a sentence
is not kept, since the translation's words do not map one to one onto the source's.
"""

from __future__ import annotations

import io
from collections.abc import Callable

FORMATS = (".txt", ".html", ".srt", ".docx", ".odt")
Translate = Callable[[list[str]], list[str]]


class DocumentError(ValueError):
    """A file that does not parse as its extension says."""


class _TranslateFailed(Exception):
    pass


def translate_document(data: bytes, extension: str, translate: Translate) -> bytes:
    """The document with its text translated; DocumentError when it does not parse (each
    library has errors of its own), and ``translate``'s own errors as they are."""
    handler = {".txt": _text, ".html": _html, ".srt": _subtitles, ".docx": _docx, ".odt": _odt}

    def guarded(texts: list[str]) -> list[str]:
        try:
            return translate(texts)
        except Exception as error:
            raise _TranslateFailed() from error

    try:
        return handler[extension](data, guarded)
    except _TranslateFailed as failed:
        raise failed.__cause__ from None
    except Exception as error:
        raise DocumentError(f"not a readable {extension} file ({type(error).__name__})") from None


def _in_place(segments: list[str], translate: Translate) -> list[str]:
    """Translations of the segments that hold text; the others as they are."""
    indices = [i for i, s in enumerate(segments) if s.strip()]
    done = translate([segments[i] for i in indices]) if indices else []
    out = list(segments)
    for i, text in zip(indices, done):
        out[i] = text
    return out


def _text(data: bytes, translate: Translate) -> bytes:
    lines = data.decode("utf-8-sig").split("\n")
    ends = ["\r" if line.endswith("\r") else "" for line in lines]
    done = _in_place([line.rstrip("\r") for line in lines], translate)
    return "\n".join(text + end for text, end in zip(done, ends)).encode("utf-8")


def _html(data: bytes, translate: Translate) -> bytes:
    from bs4 import BeautifulSoup, Comment, Doctype

    soup = BeautifulSoup(data, "html.parser")
    nodes = [node for node in soup.find_all(string=True)
             if not isinstance(node, Comment | Doctype)
             and node.parent.name not in ("script", "style", "code", "pre") and node.strip()]
    done = _in_place([str(node).strip() for node in nodes], translate)
    for node, text in zip(nodes, done):
        original = str(node)
        lead = original[:len(original) - len(original.lstrip())]
        trail = original[len(original.rstrip()):]
        node.replace_with(lead + text + trail)
    return str(soup).encode("utf-8")


def _subtitles(data: bytes, translate: Translate) -> bytes:
    import srt

    subtitles = list(srt.parse(data.decode("utf-8-sig")))
    lines = [line for s in subtitles for line in s.content.split("\n")]
    done = iter(_in_place(lines, translate))
    for subtitle in subtitles:
        subtitle.content = "\n".join(next(done) for _ in subtitle.content.split("\n"))
    return srt.compose(subtitles, reindex=False).encode("utf-8")


def _docx(data: bytes, translate: Translate) -> bytes:
    import docx

    document = docx.Document(io.BytesIO(data))
    paragraphs = list(document.paragraphs) + [p for table in document.tables for row in table.rows
                                              for cell in row.cells for p in cell.paragraphs]
    paragraphs = list({id(p._p): p for p in paragraphs}.values())  # merged cells repeat
    done = _in_place([p.text for p in paragraphs], translate)
    for paragraph, text in zip(paragraphs, done):
        runs = [run for run in paragraph.runs if run.text]
        if runs and text != paragraph.text:
            runs[0].text = text
            for run in runs[1:]:
                run.text = ""
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _odt(data: bytes, translate: Translate) -> bytes:
    from odf import teletype, text
    from odf.opendocument import load

    document = load(io.BytesIO(data))
    paragraphs = [*document.getElementsByType(text.H), *document.getElementsByType(text.P)]
    done = _in_place([teletype.extractText(p) for p in paragraphs], translate)
    for paragraph, translated in zip(paragraphs, done):
        if translated != teletype.extractText(paragraph):
            _replace_text(paragraph, translated)
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def _replace_text(element, translated: str) -> None:
    """The element's text becomes ``translated``, in its first text node (inside the first
    span, when the text starts in one), the other text nodes emptied; elements stay."""
    nodes = []

    def walk(node):
        for child in node.childNodes:
            if child.nodeType == child.TEXT_NODE:
                nodes.append(child)
            elif child.qname[1] not in ("note", "annotation"):  # footnotes are paragraphs too
                walk(child)

    walk(element)
    if not nodes:
        return
    nodes[0].data = translated
    for node in nodes[1:]:
        node.data = ""
