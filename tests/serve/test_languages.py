"""What LibreTranslate clients send first: "source": "auto" and /detect, the front-end's
settings, suggestions (disabled), and per-client rate limits."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from test_serve import StubTranslator

from serve.app import create_app
from serve.limits import RateLimiter
from serve.registry import Registry
from serve.settings import Settings

SAMPLES = {"de": "Ein Mann fährt mit dem Fahrrad durch die Stadt.",
           "en": "A man rides his bicycle through the city.",
           "fr": "Un homme fait du vélo dans la ville.",
           "cs": "Muž jede na kole městem."}


def make_client(**settings) -> TestClient:
    registry = Registry()
    for src in ("de", "fr", "cs"):  # every language into English, English into German
        registry.add(StubTranslator(f"stub-{src}-en", src, "en"))
    registry.add(StubTranslator("stub-en-de", "en", "de"))
    return TestClient(create_app(Settings(**{"processes": False, **settings}), registry))


@pytest.fixture(scope="module")
def client():
    with make_client() as c:
        yield c


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_detect_names_each_served_language(client, language):
    r = client.post("/detect", json={"q": SAMPLES[language]})
    assert r.status_code == 200
    best = r.json()[0]
    assert best["language"] == language and 50 < best["confidence"] <= 100


def test_detect_takes_a_list_a_single_word_and_refuses_an_empty_text(client):
    r = client.post("/detect", json={"q": [SAMPLES["fr"], "Hund"]})
    assert [row[0]["language"] for row in r.json()] == ["fr", "de"]
    assert client.post("/detect", json={"q": "  "}).status_code == 400
    assert client.post("/detect", data={"q": SAMPLES["cs"]}).json()[0]["language"] == "cs"


def test_source_auto_translates_each_text_from_its_own_language(client):
    r = client.post("/translate", json={"q": [SAMPLES["de"], SAMPLES["fr"]], "source": "auto",
                                        "target": "en"})
    assert r.status_code == 200
    body = r.json()
    assert body["translatedText"] == [SAMPLES["de"].upper(), SAMPLES["fr"].upper()]
    assert [d["language"] for d in body["detectedLanguage"]] == ["de", "fr"]
    one = client.post("/translate", json={"q": SAMPLES["cs"], "source": "auto", "target": "en"})
    assert one.json()["detectedLanguage"]["language"] == "cs"
    assert one.json()["translatedText"] == SAMPLES["cs"].upper()


def test_source_auto_answers_a_text_already_in_the_target_language_as_it_is(client):
    r = client.post("/translate", json={"q": SAMPLES["en"], "source": "auto", "target": "en"})
    assert r.status_code == 200 and r.json()["translatedText"] == SAMPLES["en"]


def test_a_detected_language_that_cannot_be_translated_is_named(client):
    r = client.post("/translate", json={"q": SAMPLES["fr"], "source": "auto", "target": "de"})
    assert r.status_code == 400 and "detected language 'fr'" in r.json()["error"]


def test_frontend_settings_and_suggestions_as_libretranslate_answers_them(client):
    settings = client.get("/frontend/settings").json()
    assert settings["charLimit"] == 5000 and settings["suggestions"] is False
    assert settings["language"]["source"]["code"] == "auto"
    assert settings["language"]["target"]["code"] == "en"
    r = client.post("/suggest", data={"q": "a", "s": "b", "source": "de", "target": "en"})
    assert r.status_code == 403 and r.json() == {"error": "Suggestions are disabled on this server."}
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/translate", "/detect", "/languages", "/frontend/settings", "/suggest",
            "/translate_file", "/download_file/{name}"} <= set(paths)


def test_a_client_over_its_rate_gets_429_and_the_others_go_on():
    with make_client(req_limit=3) as c:
        def send(key=None):
            body = {"q": "a", "source": "de", "target": "en", **({"api_key": key} if key else {})}
            return c.post("/translate", json=body).status_code

        assert [send("k1") for _ in range(3)] == [200, 200, 200]
        refused = c.post("/translate", json={"q": "a", "source": "de", "target": "en",
                                             "api_key": "k1"})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert send("k2") == 200  # another key, another budget
        assert [send() for _ in range(4)] == [200, 200, 200, 429]  # the address's own budget
        assert c.post("/detect", json={"q": "Hund"}).status_code == 429  # /detect spends it too
        assert 'status="429"' in c.get("/metrics").text


def test_budgets_refill_and_are_kept_per_client():
    limiter = RateLimiter(per_minute=60, max_clients=2)
    assert [limiter.wait("a", now=0.0) for _ in range(60)] == [0.0] * 60
    assert limiter.wait("a", now=0.0) == pytest.approx(1.0)  # one a second from now on
    assert limiter.wait("a", now=1.0) == 0.0
    assert limiter.wait("b", now=1.0) == 0.0 and limiter.wait("c", now=1.0) == 0.0
    assert "a" not in limiter.buckets and len(limiter.buckets) == 2  # the oldest dropped
