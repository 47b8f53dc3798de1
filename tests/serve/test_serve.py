"""The service through its app: every endpoint, LibreTranslate's shapes, every error, batching."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest
from fastapi.testclient import TestClient

from nmt.text.pieces import Alignment, Translation
from serve.app import create_app, load_registry
from serve.registry import Registry
from serve.settings import Settings

JSON = {"Content-Type": "application/json"}


class StubTranslator:
    """Upper-cases each sentence; records the batches it is given."""

    def __init__(self, name="stub-de-en", src="de", tgt="en", delay=0.0):
        self.name, self.src_lang, self.tgt_lang, self.delay = name, src, tgt, delay
        self.pairs = [(src, tgt)]
        self.batches: list[list[str]] = []
        self.active = self.most_active = 0  # batches in progress at once
        self.guard = threading.Lock()

    def translate_prepared(self, sentences, beam_size=None, n_best=1, attention=False,
                           links=False):
        with self.guard:
            self.batches.append(list(sentences))
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        time.sleep(self.delay)
        with self.guard:
            self.active -= 1
        return [Translation(s.upper(), -1.0, [(s.upper() + f" #{k}", -2.0) for k in range(1, n_best)],
                            len(s.split()), self.alignment(s, s.upper()) if attention else None,
                            tuple((i, i) for i in range(len(s.split()))) if links else None)
                if s.strip() else Translation("", 0.0, []) for s in sentences]

    def prepare(self, sentences):  # the stub's "prepared" sentence is the sentence
        return list(sentences)

    def source_lengths(self, sentences):
        return [len(s.split()) for s in sentences]

    def for_pair(self, source, target):
        return self

    def alignment(self, source, translation):
        src, tgt = source.split() + ["</s>"], translation.split() + ["</s>"]
        return Alignment(src, tgt, [[1.0 / len(src)] * len(src) for _ in tgt])


def make_client(translator=None, **settings) -> TestClient:
    """The stub in threads of this process (so that tests can read what it recorded)."""
    registry = Registry()
    registry.add(translator or StubTranslator())
    return TestClient(create_app(Settings(**{"processes": False, **settings}), registry))


@pytest.fixture
def client():
    with make_client() as c:
        yield c


def test_translate_string_and_list(client):
    r = client.post("/translate", json={"q": "ein hund.", "source": "de", "target": "en"})
    assert r.status_code == 200 and r.json()["translatedText"] == "EIN HUND."
    r = client.post("/translate", json={"q": ["a.", "", "  ", "b"], "source": "de", "target": "en"})
    assert r.json()["translatedText"] == ["A.", "", "", "B"]


def test_alternatives_shape_follows_q(client):
    r = client.post("/translate", json={"q": "x", "source": "de", "target": "en", "alternatives": 2})
    assert r.json()["alternatives"] == ["X #1", "X #2"]
    r = client.post("/translate", json={"q": ["x", "y"], "source": "de", "target": "en",
                                        "alternatives": 1})
    assert r.json()["alternatives"] == [["X #1"], ["Y #1"]]


def test_form_body_as_libretranslate_clients_send(client):
    r = client.post("/translate", data={"q": "hallo welt", "source": "de", "target": "en",
                                        "alternatives": "1"})
    assert r.status_code == 200, r.text
    assert r.json()["translatedText"] == "HALLO WELT"
    assert r.json()["alternatives"] == ["HALLO WELT #1"]


def test_paragraphs_are_split_and_joined(client):
    stub = client.app.state.registry.translators["stub-de-en"]
    r = client.post("/translate", json={"q": "Eins. Zwei!\nDrei?", "source": "de", "target": "en"})
    assert r.json()["translatedText"] == "EINS. ZWEI!\nDREI?"
    assert stub.batches[-1] == ["Eins.", "Zwei!", "Drei?"]


def test_attention(client):
    r = client.post("/translate", json={"q": "a b", "source": "de", "target": "en",
                                        "attention": True})
    (alignment,) = r.json()["attention"]
    assert alignment["source_tokens"] == ["a", "b", "</s>"]
    assert len(alignment["weights"]) == len(alignment["target_tokens"])


def test_alignment_gives_word_links_counted_over_the_whole_text(client):
    r = client.post("/translate", json={"q": ["a b. c d e", "f"], "source": "de", "target": "en",
                                        "alignment": True})
    # the stub links word i to word i in each sentence; the second sentence's words come after
    # the first's on both sides
    assert r.json()["alignment"] == [[[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]], [[0, 0]]]
    form = client.post("/translate", data={"q": "a b", "source": "de", "target": "en",
                                           "alignment": "true"})
    assert form.json()["alignment"] == [[0, 0], [1, 1]]
    plain = client.post("/translate", json={"q": "a b", "source": "de", "target": "en"})
    assert "alignment" not in plain.json()


def test_html_comes_back_translated_with_its_tags(client):
    html = '<p>ein <b>zwei</b> <a href="x>y">drei</a><br>vier</p><!-- c -->'
    r = client.post("/translate", json={"q": [html, "<i>f</i>"], "source": "de", "target": "en",
                                        "format": "html"})
    assert r.status_code == 200
    assert r.json()["translatedText"] == [
        '<p>EIN <b>ZWEI</b> <a href="x&gt;y">DREI</a><br/> VIER</p><!-- c -->', "<i>F</i>"]
    bad = client.post("/translate", json={"q": "x", "source": "de", "target": "en",
                                          "format": "markdown"})
    assert bad.status_code == 400 and "text or html" in bad.json()["error"]


def test_languages_health_metrics_page_docs(client):
    assert client.get("/languages").json() == [
        {"code": "de", "name": "German", "targets": ["en"]},
        {"code": "en", "name": "English", "targets": []}]
    assert client.get("/health").json()["status"] == "ok"
    client.post("/translate", json={"q": "x", "source": "de", "target": "en"})
    metrics = client.get("/metrics").text
    assert 'nmt_http_requests_total{route="/translate",status="200"}' in metrics
    assert "nmt_batch_sentences_bucket" in metrics and "nmt_queue_sentences" in metrics
    assert "nmt_translated_tokens_total" in metrics
    page = client.get("/")
    assert page.status_code == 200 and "heatmap" in page.text
    assert "/translate" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("body,status,needle", [
    (b"{not json", 400, "malformed JSON"),
    (b"\xff\xfe{}", 400, "UTF-8"),
    (b"[1, 2]", 400, "JSON object"),
    (json.dumps({"source": "de", "target": "en"}).encode(), 400, "missing parameter: q"),
    (json.dumps({"q": 5, "source": "de", "target": "en"}).encode(), 400, "q"),
    (json.dumps({"q": ["a", 3], "source": "de", "target": "en"}).encode(), 400, "q"),
    (json.dumps({"q": "a", "source": "de", "target": "en", "alternatives": "x"}).encode(), 400,
     "alternatives"),
    (b'{"q": "a", "source": "de", "target": "en", "beam_size": Infinity}', 400, "beam_size"),
    (b'{"q": "a", "source": "de", "target": NaN}', 400, "target"),
    (json.dumps({"q": "a", "source": "fr", "target": "en"}).encode(), 400, "fr-en"),
    (json.dumps({"q": "a", "source": "auto", "target": "xx"}).encode(), 400, "cannot be translated"),
    (json.dumps({"q": "a", "source": "de", "target": "en", "format": "xml"}).encode(), 400, "xml"),
    (json.dumps({"q": "a", "source": "de", "target": "en", "model": "nope"}).encode(), 400, "nope"),
    (json.dumps({"q": "a" * 5001, "source": "de", "target": "en"}).encode(), 413, "5000"),
    (json.dumps({"q": ["a"] * 65, "source": "de", "target": "en"}).encode(), 413, "64"),
    (json.dumps({"q": "a" * 1_100_000, "source": "de", "target": "en"}).encode(), 413, "bytes"),
])
def test_bad_requests_get_json_errors(client, body, status, needle):
    r = client.post("/translate", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]
    assert client.get("/health").status_code == 200  # and the server keeps serving


@pytest.mark.parametrize("text", ["", "   \n\t ", "a\x00b\x07c\x1b[31m", "🙂🚀 Hund 🐕",
                                  "\u202eabc\u200b", "x" * 5000])
def test_odd_texts_translate(client, text):
    r = client.post("/translate", json={"q": text, "source": "de", "target": "en"})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["translatedText"], str)


def test_api_keys():
    with make_client(api_keys="k1,k2") as c:
        body = {"q": "x", "source": "de", "target": "en"}
        assert c.post("/translate", json=body).status_code == 403
        assert c.post("/translate", json={**body, "api_key": "bad"}).status_code == 403
        assert c.post("/translate", json={**body, "api_key": "k2"}).status_code == 200


def test_full_queue_is_503_with_retry_after():
    with make_client(StubTranslator(delay=0.3), queue_size=2) as c:
        body = {"q": ["a", "b"], "source": "de", "target": "en"}
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(c.post, "/translate", json=body) for _ in range(4)]
            responses = [f.result() for f in futures]
    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200 and 503 in statuses
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["error"]


def test_slow_translation_is_504():
    with make_client(StubTranslator(delay=0.5), request_timeout_s=0.1) as c:
        r = c.post("/translate", json={"q": "x", "source": "de", "target": "en"})
        assert r.status_code == 504 and "longer" in r.json()["error"]


def test_lone_request_on_an_idle_server_does_not_wait_for_company():
    """With an hour's wait for company configured, a lone request is still answered: an idle
    server starts it at once (the 60 s guard only keeps a broken batcher from hanging the run)."""
    from serve.batcher import Batcher

    async def translate(translator, sentences, beam_size, n_best, attention=False):
        return [Translation(s.upper(), 0.0, []) for s in sentences]

    async def scenario():
        batcher = Batcher(100, 3600.0, 64, 1, translate)
        batcher.start()
        model = StubTranslator(name="m")
        result = await asyncio.wait_for(batcher.submit(model, ["allein"], 1, 1), 60)
        await batcher.stop()
        return result

    assert [t.text for t in asyncio.run(scenario())] == ["ALLEIN"]


class GatedStub(StubTranslator):
    """Holds its first batch in the model until ``gate`` is set."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()

    def translate_prepared(self, sentences, beam_size=None, n_best=1, attention=False,
                           links=False):
        if not self.batches:
            self.gate.wait(60)
        return super().translate_prepared(sentences, beam_size, n_best, attention, links)


def test_requests_that_queued_behind_a_batch_go_together():
    """One worker, no waiting: what queued while the model was busy is the next batch, whole."""
    stub = GatedStub()
    with make_client(stub, workers=1, max_wait_ms=0) as c:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            first = pool.submit(c.post, "/translate", json={"q": "erst", "source": "de",
                                                            "target": "en"})
            while c.app.state.batcher.translating == 0:
                time.sleep(0.005)
            rest = [pool.submit(c.post, "/translate", json={"q": f"satz {i}", "source": "de",
                                                            "target": "en"}) for i in range(5)]
            while c.app.state.batcher.queue.qsize() < 5:  # all five wait behind the first
                time.sleep(0.005)
            stub.gate.set()
            assert all(f.result().status_code == 200 for f in [first, *rest])
    assert [len(b) for b in stub.batches] == [1, 5]


def test_concurrent_requests_are_batched_and_answered_separately():
    stub = StubTranslator(delay=0.05)
    with make_client(stub, max_wait_ms=50) as c:
        texts = [f"satz nummer {i}" for i in range(16)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(c.post, "/translate",
                                   json={"q": t, "source": "de", "target": "en"}) for t in texts]
            answers = [f.result().json()["translatedText"] for f in futures]
        batch_sizes = c.app.state.batcher.batch_sizes
    assert answers == [t.upper() for t in texts]
    assert max(batch_sizes) > 1 and len(batch_sizes) < len(texts)


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_translate_batches_side_by_side(workers):
    stub = StubTranslator(delay=0.2)
    with make_client(stub, workers=workers, max_wait_ms=0, batch_max_sentences=1) as c:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(c.post, "/translate", json={"q": f"satz {i}", "source": "de",
                                                               "target": "en"}) for i in range(4)]
            assert [f.result().status_code for f in futures] == [200] * 4
    assert stub.most_active == workers


def test_real_model_end_to_end(trained_model_dir):
    with TestClient(create_app(Settings(models=str(trained_model_dir)))) as c:
        r = c.post("/translate", json={"q": ["Ein hund läuft im park.", ""], "source": "de",
                                       "target": "en", "attention": True, "beam_size": 2})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["translatedText"][0].lower().startswith("a dog")
        alignment = body["attention"][0][0]
        assert len(alignment["weights"]) == len(alignment["target_tokens"])
        assert abs(sum(alignment["weights"][0]) - 1.0) < 0.01


@pytest.mark.parametrize("quantize", ["int8", "none"])
def test_settings_choose_weights_workers_and_threads(trained_model_dir, quantize,
                                                          monkeypatch):
    monkeypatch.setenv("NMT_QUANTIZE", quantize)
    settings = Settings(models=str(trained_model_dir))
    cores = os.cpu_count() or 1
    assert settings.batch_workers() == cores and settings.torch_threads() == 1
    assert Settings(workers=1).torch_threads() == cores
    assert Settings(threads=3).torch_threads() == 3
    registry = load_registry(settings)
    assert [t.precision for t in registry.translators.values()] == [quantize]
    with pytest.raises(ValueError):
        Settings(quantize="int4")


class ProcessStub(StubTranslator):
    """Names the process that translated; a sentence "crash" ends that process."""

    def translate_prepared(self, sentences, beam_size=None, n_best=1, attention=False,
                           links=False):
        if "crash" in sentences:
            os._exit(1)
        return [Translation(f"{s.upper()} {os.getpid()}", -1.0, [], 1) for s in sentences]


def test_worker_processes_translate_and_a_dead_worker_is_replaced():
    registry = Registry()
    registry.add(ProcessStub(delay=0.0))
    settings = Settings(processes=True, workers=2, max_wait_ms=20)
    with TestClient(create_app(settings, registry)) as c:
        texts = [f"satz {i}" for i in range(12)]
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            futures = [pool.submit(c.post, "/translate",
                                   json={"q": t, "source": "de", "target": "en"}) for t in texts]
            answers = [f.result().json()["translatedText"] for f in futures]
        words = [a.rsplit(" ", 1) for a in answers]
        assert [w[0] for w in words] == [t.upper() for t in texts]  # each gets its own answer
        pids = {int(w[1]) for w in words}
        assert os.getpid() not in pids and 1 <= len(pids) <= 2

        r = c.post("/translate", json={"q": "crash", "source": "de", "target": "en"})
        assert r.status_code == 503 and "worker" in r.json()["error"]
        assert r.headers["Retry-After"] == "1"
        r = c.post("/translate", json={"q": "weiter", "source": "de", "target": "en"})
        assert r.status_code == 200 and r.json()["translatedText"].startswith("WEITER ")
        assert int(r.json()["translatedText"].split()[1]) not in pids  # a new worker


# ----------------------------------------------------------------------------- isolation


class PoisonStub(StubTranslator):
    """Fails any batch that holds the sentence "gift"."""

    def translate_prepared(self, sentences, beam_size=None, n_best=1, attention=False,
                           links=False):
        if "gift" in sentences:
            self.batches.append(list(sentences))
            raise RuntimeError("this sentence breaks the model")
        return super().translate_prepared(sentences, beam_size, n_best, attention, links)


def test_bad_text_is_refused_before_the_queue(client):
    for body in ({"q": "\ud800", "source": "de", "target": "en"},
                 {"q": ["gut", "a\udfffb"], "source": "de", "target": "en"},
                 {"q": "gut", "source": "\ud800", "target": "en"}):
        r = client.post("/translate", content=json.dumps(body), headers=JSON)
        assert r.status_code == 400 and "surrogate" in r.json()["error"], r.text
    assert client.app.state.batcher.batch_sizes == []  # nothing reached the model


def test_a_failing_batch_fails_only_its_culprit():
    stub = PoisonStub(delay=0.3)
    with make_client(stub, max_wait_ms=200) as c:
        bodies = [{"q": q, "source": "de", "target": "en"} for q in ("eins", "gift", "zwei", "drei")]
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            blocker = pool.submit(c.post, "/translate", json={"q": "vorher", "source": "de",
                                                              "target": "en"})
            time.sleep(0.1)  # the blocker is in the model: the four queue up together
            answers = list(pool.map(lambda b: c.post("/translate", json=b), bodies))
            assert blocker.result().status_code == 200
        statuses = [a.status_code for a in answers]
        assert statuses == [200, 422, 200, 200], [a.text for a in answers]
        assert answers[1].json()["error"].startswith("this text could not be translated")
        assert any(len(batch) > 1 and "gift" in batch for batch in stub.batches)  # shared one


def test_a_timed_out_request_stops_counting_at_once():
    with make_client(StubTranslator(delay=1.0), request_timeout_s=0.2) as c:
        r = c.post("/translate", json={"q": "langsam", "source": "de", "target": "en"})
        assert r.status_code == 504
        assert c.app.state.batcher.waiting == 0  # released at the timeout, not after the batch


def test_an_abandoned_job_is_never_decoded():
    from serve.batcher import Batcher

    decoded = []

    async def translate(translator, sentences, beam_size, n_best, attention=False):
        decoded.append(list(sentences))
        await asyncio.sleep(0.2)
        return [Translation(s, 0.0, []) for s in sentences]

    async def scenario():
        batcher = Batcher(100, 0.0, 2, 1, translate)
        batcher.start()
        model = StubTranslator(name="m")
        first = asyncio.ensure_future(batcher.submit(model, ["a", "b", "c", "d"], 1, 1))
        await asyncio.sleep(0.05)  # the first chunk of two is in the model
        first.cancel()
        late = asyncio.ensure_future(batcher.submit(model, ["x"], 1, 1))
        await asyncio.sleep(0.01)
        late.cancel()  # gone before its turn
        await asyncio.sleep(0.01)
        waiting = batcher.waiting  # both released at once, though "a", "b" are still decoding
        await asyncio.sleep(0.5)
        await batcher.stop()
        return waiting

    assert asyncio.run(scenario()) == 0
    assert decoded == [["a", "b"]]  # the rest of the first job and the whole second never ran


def test_metrics_need_the_key_and_count_failures():
    with make_client(PoisonStub(), api_keys="k1") as c:
        assert c.get("/metrics").status_code == 403
        c.post("/translate", json={"q": "gift", "source": "de", "target": "en", "api_key": "k1"})
        text = c.get("/metrics", params={"api_key": "k1"}).text
        assert 'status="422"' in text


class BrokenLengths(StubTranslator):
    def source_lengths(self, sentences):
        raise RuntimeError("a bug outside the batcher")


def test_a_failure_no_handler_takes_is_a_counted_json_500():
    with TestClient(create_app(Settings(processes=False), _registry(BrokenLengths())),
                    raise_server_exceptions=False) as c:
        r = c.post("/translate", json={"q": "a", "source": "de", "target": "en"})
        assert r.status_code == 500 and r.json() == {"error": "internal server error"}
        assert c.get("/health").status_code == 200  # and the server goes on
        assert 'nmt_http_requests_total{route="/translate",status="500"}' in \
            c.get("/metrics").text


def _registry(translator) -> Registry:
    registry = Registry()
    registry.add(translator)
    return registry


def test_docs_work_offline(client):
    for path in ("/docs", "/redoc"):
        html = client.get(path).text
        urls = re.findall(r'(?:src|href)=["\']([^"\']+)', html) + re.findall(r"url: *'([^']+)'", html)
        assert urls and all(u.startswith("/") for u in urls), urls
        for url in urls:
            assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("variable, value", [("NMT_QUEUE_SIZE", "abc"), ("NMT_QUANTIZE", "fp16"),
                                             ("NMT_PORT", "abc"), ("NMT_CHAR_LIMIT", "-5")])
def test_invalid_settings_exit_2_with_one_line(variable, value, tmp_path):
    env = {**os.environ, variable: value}
    result = subprocess.run([sys.executable, "-m", "nmt", "serve"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0] and "Traceback" not in result.stderr


def test_a_busy_port_is_one_line_before_any_claim(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "nmt", "serve", "--port", str(port)],
                                cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "serving" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and str(port) in result.stderr


def test_json_that_breaks_parsers_is_a_400(client):
    for body in ('{"q": "a", "source": "de", "target": "en", "beam_size": 1' + "0" * 5000 + "}",
                 "[" * 100_000):
        r = client.post("/translate", content=body, headers=JSON)
        assert r.status_code == 400 and r.json()["error"].startswith("malformed JSON")


def test_isolation_with_real_worker_processes(trained_model_dir):
    registry = Registry()
    registry.add(PoisonStub(name="poison-de-en"))
    real = load_registry(Settings(models=str(trained_model_dir), processes=True))
    for translator in real.translators.values():
        registry.add(translator)
    settings = Settings(processes=True, workers=2, max_wait_ms=50)
    with TestClient(create_app(settings, registry)) as c:
        def post(q, model="poison-de-en"):
            return c.post("/translate", json={"q": q, "source": "de", "target": "en",
                                              "model": model})
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            bad = pool.submit(post, "gift")
            surrogate = pool.submit(lambda: c.post("/translate", headers=JSON, content=(
                '{"q": "\\ud800", "source": "de", "target": "en"}')))
            long = pool.submit(post, "0" * 2500 + " " + "wort" * 600, real_name(real))
            good = [pool.submit(post, f"satz {i}") for i in range(3)]
            assert bad.result().status_code == 422
            assert surrogate.result().status_code == 400
            assert long.result().status_code == 200 and "0" * 2500 in long.result().json()[
                "translatedText"]
            assert [g.result().status_code for g in good] == [200, 200, 200]


def real_name(registry) -> str:
    return next(iter(registry.translators))


def test_work_is_bounded_before_the_queue():
    """Subwords x beam size over NMT_WORK_LIMIT: 413 with the reason, nothing reaches the model;
    the same text with a smaller beam is within the bound and translated."""
    stub = StubTranslator()
    with make_client(stub, work_limit=20) as c:
        text = " ".join(f"wort{i}" for i in range(10))
        r = c.post("/translate", json={"q": text, "source": "de", "target": "en",
                                       "beam_size": 4})
        assert r.status_code == 413 and "10 subwords x beam size 4 = 40" in r.json()["error"]
        assert stub.batches == []
        r = c.post("/translate", json={"q": text, "source": "de", "target": "en",
                                       "beam_size": 2})
        assert r.status_code == 200 and stub.batches == [[text]]


def test_a_long_sentence_never_holds_up_short_ones():
    """A sentence over ``heavy_tokens`` subwords is decoded alone, in its own lane: short
    requests sent after it are answered while it is still in the model."""
    from serve.batcher import Batcher

    release_heavy = None
    batches = []

    async def translate(translator, sentences, beam_size, n_best, attention=False):
        batches.append(list(sentences))
        if any(s.startswith("lang") for s in sentences):
            await release_heavy.wait()
        return [Translation(s.upper(), 0.0, []) for s in sentences]

    async def scenario():
        nonlocal release_heavy
        release_heavy = asyncio.Event()
        batcher = Batcher(100, 0.0, 64, 1, translate, heavy_tokens=50)
        batcher.start()
        model = StubTranslator(name="m")
        heavy = asyncio.ensure_future(batcher.submit(model, ["kurz", "lang " * 80, "auch"], 1, 1,
                                                     tokens=[1, 80, 1]))
        await asyncio.sleep(0.05)
        short = await asyncio.wait_for(batcher.submit(model, ["danach"], 1, 1, tokens=[1]), 5)
        finished_early = heavy.done()
        release_heavy.set()
        result = await asyncio.wait_for(heavy, 5)
        waiting = batcher.waiting
        await batcher.stop()
        return short, finished_early, result, waiting

    short, finished_early, result, waiting = asyncio.run(scenario())
    assert [t.text for t in short] == ["DANACH"] and not finished_early
    assert [t.text for t in result] == ["KURZ", ("LANG " * 80).upper(), "AUCH"]
    assert ["lang " * 80] in batches and all(len(b) == 1 for b in batches if "lang " * 80 in b)
    assert waiting == 0


def test_a_client_that_leaves_stops_its_work():
    """The route's watcher wakes when the client's disconnect arrives: the work is cancelled
    and ClientGone raised; a client that stays gets its result."""
    from starlette.requests import Request

    from serve.routes import ClientGone, until_disconnected

    async def scenario(leave_after: float):
        gone = asyncio.Event()

        async def receive():
            await asyncio.sleep(leave_after)
            gone.set()
            return {"type": "http.disconnect"}

        cancelled = asyncio.Event()

        async def work():
            try:
                await asyncio.sleep(0.5)
                return "done"
            except asyncio.CancelledError:
                cancelled.set()
                raise

        request = Request({"type": "http", "method": "POST", "headers": []}, receive)
        try:
            return await until_disconnected(request, work(), timeout=5), cancelled.is_set()
        except ClientGone:
            return "gone", cancelled.is_set()

    assert asyncio.run(scenario(0.05)) == ("gone", True)
    assert asyncio.run(scenario(5.0)) == ("done", False)


def test_each_sentence_goes_through_the_input_pipeline_once(trained_model_dir):
    """The route prepares each sentence (its cost is counted on what the model will read) and
    the worker translates that very preparation, never preparing it again."""
    from nmt.decode.translator import Translator

    translator = Translator.load(trained_model_dir)
    prepared, prepare = [], translator.pipeline.prepare
    translator.pipeline.prepare = lambda sentence: prepared.append(sentence) or prepare(sentence)
    with TestClient(create_app(Settings(processes=False), _registry(translator))) as c:
        r = c.post("/translate", json={"q": "ein hund läuft. EINE KATZE SITZT.", "source": "de",
                                       "target": "en"})
    assert r.status_code == 200 and r.json()["translatedText"].split(". ")[1].isupper()
    assert prepared == ["ein hund läuft.", "EINE KATZE SITZT."]


class SlowToPrepare(StubTranslator):
    """Holds the text work of a request (splitting, preparing, counting) until released."""

    def __init__(self):
        super().__init__()
        self.preparing, self.release = threading.Event(), threading.Event()
        self.held_the_loop = False

    def prepare(self, sentences):
        self.preparing.set()
        self.held_the_loop = not self.release.wait(5)  # released only once /health answered
        return list(sentences)


def test_the_event_loop_answers_while_a_request_is_prepared():
    stub = SlowToPrepare()
    with make_client(stub) as c, concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(c.post, "/translate", json={"q": "langsam", "source": "de",
                                                          "target": "en"})
        assert stub.preparing.wait(30)
        assert c.get("/health").status_code == 200
        stub.release.set()
        assert pending.result().status_code == 200
    assert not stub.held_the_loop


def _status_count(client, status: int) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in client.get("/metrics").text.splitlines()
               if line.startswith("nmt_http_requests_total") and f'status="{status}"' in line)


def test_a_client_that_leaves_mid_body_is_a_disconnect_not_a_500(client):
    scope = {"type": "http", "http_version": "1.1", "method": "POST", "path": "/translate",
             "raw_path": b"/translate", "query_string": b"", "root_path": "", "scheme": "http",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 5000), "app": client.app}
    messages = iter([{"type": "http.request", "body": b'{"q": "ha', "more_body": True},
                     {"type": "http.disconnect"}])
    sent = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    errors = _status_count(client, 500)
    asyncio.run(client.app(scope, receive, send))
    assert sent[0]["status"] == 499 and _status_count(client, 500) == errors


def test_blank_api_keys_are_refused_at_start_up():
    from nmt.core.errors import NmtError
    from serve.settings import load_settings

    with pytest.raises(NmtError, match="NMT_API_KEYS=' , ': .*lists no key"):
        load_settings(api_keys=" , ")
    assert load_settings(api_keys="a, b").keys() == {"a", "b"}


def test_a_trailing_slash_is_a_404_never_a_redirect_built_from_the_host(client):
    r = client.get("/health/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.status_code == 404 and "location" not in r.headers and "error" in r.json()


def test_errors_quote_only_a_short_prefix_of_what_was_sent(client):
    r = client.post("/translate", json={"q": "a", "source": "de", "target": "en",
                                        "model": "x" * 100_000})
    assert r.status_code == 400 and len(r.text) < 300 and "xxx..." in r.json()["error"]
