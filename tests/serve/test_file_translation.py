"""File translation (/translate_file, /download_file): every supported format comes back with
its structure, every paragraph translated; bad files and names are refused."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from test_serve import StubTranslator

from serve.app import create_app
from serve.registry import Registry
from serve.settings import Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    registry = Registry()
    registry.add(StubTranslator())  # de-en, answers each sentence in capitals
    settings = Settings(processes=False, file_limit=200_000,
                        files_dir=str(tmp_path_factory.mktemp("results")))
    with TestClient(create_app(settings, registry)) as c:
        yield c


def round_trip(client, name: str, data: bytes) -> bytes:
    r = client.post("/translate_file", data={"source": "de", "target": "en"},
                    files={"file": (name, data)})
    assert r.status_code == 200, r.text
    url = r.json()["translatedFileUrl"]
    assert url.startswith("http") and "/download_file/" in url
    download = client.get(url.split("testserver", 1)[1])
    assert download.status_code == 200
    return download.content


def test_a_docx_keeps_its_heading_bold_table_and_list(client):
    import docx

    document = docx.Document()
    document.add_heading("Ein Titel", level=1)
    paragraph = document.add_paragraph()
    paragraph.add_run("Ein Hund läuft.").bold = True
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "links", "rechts"
    document.add_paragraph("ein Punkt", style="List Bullet")
    data = io.BytesIO()
    document.save(data)
    back = docx.Document(io.BytesIO(round_trip(client, "brief.docx", data.getvalue())))
    assert [(p.style.name, p.text) for p in back.paragraphs] == [
        ("Heading 1", "EIN TITEL"), ("Normal", "EIN HUND LÄUFT."), ("List Bullet", "EIN PUNKT")]
    assert back.paragraphs[1].runs[0].bold
    assert [c.text for c in back.tables[0].rows[0].cells] == ["LINKS", "RECHTS"]


def test_an_odt_keeps_its_heading_bold_table_and_list(client):
    from odf import table, teletype, text
    from odf.opendocument import OpenDocumentText, load
    from odf.style import Style, TextProperties

    document = OpenDocumentText()
    bold = Style(name="Bold", family="text")
    bold.addElement(TextProperties(fontweight="bold"))
    document.automaticstyles.addElement(bold)
    document.text.addElement(text.H(outlinelevel=1, text="Ein Titel"))
    paragraph = text.P()
    paragraph.addElement(text.Span(stylename=bold, text="Ein Hund läuft."))
    document.text.addElement(paragraph)
    grid = table.Table(name="T")
    grid.addElement(table.TableColumn(numbercolumnsrepeated=2))
    row = table.TableRow()
    for word in ("links", "rechts"):
        cell = table.TableCell()
        cell.addElement(text.P(text=word))
        row.addElement(cell)
    grid.addElement(row)
    document.text.addElement(grid)
    items = text.List()
    item = text.ListItem()
    item.addElement(text.P(text="ein Punkt"))
    items.addElement(item)
    document.text.addElement(items)
    data = io.BytesIO()
    document.write(data)
    back = load(io.BytesIO(round_trip(client, "brief.odt", data.getvalue())))
    assert [teletype.extractText(h) for h in back.getElementsByType(text.H)] == ["EIN TITEL"]
    assert [teletype.extractText(p) for p in back.getElementsByType(text.P)] == [
        "EIN HUND LÄUFT.", "LINKS", "RECHTS", "EIN PUNKT"]
    assert back.getElementsByType(text.Span)[0].getAttribute("stylename") == "Bold"
    assert len(back.getElementsByType(table.TableCell)) == 2
    assert len(back.getElementsByType(text.ListItem)) == 1


def test_html_srt_and_text_keep_their_markup_timing_and_lines(client):
    html = b"<html><head><title>Titel</title><style>p {}</style></head><body><p>Ein <b>Hund</b>" \
           b" l\xc3\xa4uft.</p><!-- Kommentar --></body></html>"
    back = round_trip(client, "seite.html", html).decode()
    assert "<b>HUND</b>" in back and "<p>EIN <b>" in back and "p {}" in back
    assert "<!-- Kommentar -->" in back and "<title>TITEL</title>" in back
    subtitles = "1\n00:00:01,000 --> 00:00:02,000\nEin Hund\nläuft.\n\n2\n00:00:03,000 --> " \
                "00:00:04,500\nEnde\n\n"
    back = round_trip(client, "film.srt", subtitles.encode()).decode()
    assert back == subtitles.replace("Ein Hund\nläuft.", "EIN HUND\nLÄUFT.").replace("Ende", "ENDE")
    assert round_trip(client, "a.txt", b"Ein Hund.\n\nZwei Katzen.\n") == b"EIN HUND.\n\nZWEI KATZEN.\n"


def test_bad_files_and_names_are_refused(client):
    post = lambda name, data: client.post("/translate_file", data={"source": "de", "target": "en"},  # noqa: E731
                                          files={"file": (name, data)})
    assert post("bild.png", b"\x89PNG").status_code == 400
    assert post("kaputt.docx", b"not a zip").status_code == 400
    assert post("gross.txt", b"a" * 300_000).status_code == 413
    for name in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "0" * 32 + ".x", "nope"):
        r = client.get(f"/download_file/{name}")
        assert r.status_code == 404 and "error" in r.json()
    settings = client.get("/frontend/settings").json()
    assert settings["filesTranslation"] and ".docx" in settings["supportedFilesFormat"]
