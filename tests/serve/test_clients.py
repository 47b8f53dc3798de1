"""LibreTranslate's own client libraries, unmodified, against `nmt serve` with the shipped
models: translate (explicit and auto), detect, languages, files, the front-end's settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, free_port, wait_until_serving


@pytest.fixture(scope="module")
def url():
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "nmt", "serve", "--port", str(port)],
                              cwd=ROOT, env={**os.environ, "NMT_WORKERS": "1"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    wait_until_serving(url, server)
    yield url
    server.terminate()
    server.wait(timeout=60)


def test_libretranslatepy(url):
    from libretranslatepy import LibreTranslateAPI

    client = LibreTranslateAPI(url)
    assert client.translate("Ein Hund rennt durch den Schnee.", "de", "en") == \
        "A dog runs through the snow."
    assert client.translate("Ein Hund rennt durch den Schnee.", "auto", "en") == \
        "A dog runs through the snow."
    assert client.detect("Un chien court dans la neige.")[0]["language"] == "fr"
    codes = {language["code"] for language in client.languages()}
    assert {"en", "de", "fr", "cs"} <= codes


def test_libretranslate_aio(url, tmp_path):
    from libretranslate_aio import ForbiddenError, LibreTranslate

    with LibreTranslate(url) as client:
        translation = client.translate(["Ein Hund rennt.", "Une femme chante dans la rue."],
                                       "auto", "en")
        assert [d.language for d in translation.detected_language] == ["de", "fr"]
        assert all(text.startswith("A ") for text in translation.translated_text)
        html = client.translate('<p>Ein <b>Hund</b> rennt durch den <a href="/s">Schnee</a>.</p>',
                                "de", "en", format="html")
        assert html.translated_text == \
            '<p>A <b>dog</b> runs through the <a href="/s">snow</a>.</p>'
        explicit = client.translate("Ein Hund rennt durch den Schnee.", "de", "en")
        assert explicit.translated_text == "A dog runs through the snow."
        assert explicit.detected_language is None
        assert {"en", "de", "fr", "cs"} <= {language.code for language in client.languages()}
        assert client.detect("Muž jede na kole.")[0].language == "cs"
        settings = client.frontend_settings()
        assert settings.char_limit == 5000 and ".docx" in settings.supported_files_format
        source = tmp_path / "brief.txt"
        source.write_text("Ein Hund rennt durch den Schnee.\n")
        result = client.translate_file(Path(source), "de", "en")
        assert httpx.get(result.translated_file_url).text == "A dog runs through the snow.\n"
        with pytest.raises(ForbiddenError):
            client.suggest("Hund", "dog", "de", "en")
