"""`nmt serve` as a user runs it: serves what is under models/, and SIGTERM lets requests in
flight finish before the process exits."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from conftest import free_port


@pytest.fixture
def served(tmp_path, trained_model_dir):
    shutil.copytree(trained_model_dir, tmp_path / "models" / "tiny-de-en")
    port = free_port()
    env = {**os.environ, "NMT_HEADER_TIMEOUT_S": "1", "NMT_BODY_TIMEOUT_S": "1",
           "NMT_BODY_DEADLINE_S": "2", "NMT_WRITE_TIMEOUT_S": "1"}
    process = subprocess.Popen([sys.executable, "-m", "nmt", "serve", "--port", str(port)],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("server did not start: " + process.stderr.read().decode()[-2000:])
    yield url, process
    if process.poll() is None:
        process.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_serves_models_dir_and_finishes_in_flight_requests_on_sigterm_and_sighup(served, sig):
    url, process = served
    assert httpx.get(url + "/health").json()["models"] == ["tiny-de-en"]
    texts = ["Ein hund läuft im park. Eine katze sitzt im garten. " * 40] * 3  # 240 sentences
    result = {}

    def slow_request():
        result["response"] = httpx.post(url + "/translate", json={
            "q": texts, "source": "de", "target": "en", "beam_size": 4}, timeout=120)

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.5)  # the request is being translated
    process.send_signal(sig)
    thread.join(timeout=120)
    response = result["response"]
    assert response.status_code == 200
    assert len(response.json()["translatedText"]) == 3
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells of it
    assert process.wait(timeout=60) in (0, -sig)
    assert b"Finished server process" in process.stderr.read()


def test_stalled_connections_are_closed(served):
    url, _ = served
    port = int(url.rsplit(":", 1)[1])
    headers_only = socket.create_connection(("127.0.0.1", port))
    headers_only.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\n")  # never finished
    half_body = socket.create_connection(("127.0.0.1", port))
    half_body.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      b"\r\nContent-Length: 100\r\n\r\n{\"q\": ")
    time.sleep(2.5)
    headers_only.settimeout(5)
    half_body.settimeout(5)
    assert headers_only.recv(1024) == b""  # closed by the server
    assert half_body.recv(1024).startswith(b"HTTP/1.1 408")
    headers_only.close()
    half_body.close()
    r = httpx.post(url + "/translate", json={"q": "0" * 5000, "source": "de", "target": "en"},
                   timeout=120)
    assert r.status_code == 200 and r.json()["translatedText"].count("0") == 5000


def test_a_body_trickled_in_is_cut_off_at_the_deadline(served):
    """Each byte within the stall timeout (1 s), the whole past the body deadline (2 s): 408."""
    url, _ = served
    port = int(url.rsplit(":", 1)[1])
    body = b'{"q": "Ein hund l\xc3\xa4uft.", "source": "de", "target": "en"}'
    trickle = socket.create_connection(("127.0.0.1", port))
    trickle.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                    b"\r\nContent-Length: %d\r\n\r\n" % len(body))
    trickle.settimeout(0.01)
    answer = b""
    for byte in body[:-1]:
        trickle.sendall(bytes([byte]))
        time.sleep(0.3)
        try:
            answer = trickle.recv(1024)
            break
        except TimeoutError:
            continue
    trickle.close()
    assert answer.startswith(b"HTTP/1.1 408") and b"took longer than 2.0 s" in answer


def test_a_request_with_two_lengths_is_refused_and_its_connection_closed(served):
    """Content-Length beside Transfer-Encoding can smuggle a second request in the body
    (RFC 9112 6.1): refused with 400, and nothing after it on the connection is answered."""
    url, _ = served
    port = int(url.rsplit(":", 1)[1])
    hidden = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    chunk = b'{"q": "a", "source": "de", "target": "en"}'
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)
    smuggler = socket.create_connection(("127.0.0.1", port))
    smuggler.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s%s"
                     % (len(body), body, hidden))
    smuggler.settimeout(10)
    answer = b""
    while chunk := smuggler.recv(65536):
        answer += chunk
    smuggler.close()
    assert answer.startswith(b"HTTP/1.1 400") and answer.count(b"HTTP/1.1") == 1


def test_a_client_that_stops_reading_its_answer_is_cut_off(served):
    """A large answer (attention over 256 long sentences) to a client that reads nothing: once the
    server's send buffer is full for NMT_WRITE_TIMEOUT_S (1 s), the connection is closed."""
    url, _ = served
    port = int(url.rsplit(":", 1)[1])
    text = ("ein hund läuft im park " * 8 + ". ") * 4  # the answer: about 9 MB of attention
    body = json.dumps({"q": [text] * 64, "source": "de", "target": "en", "beam_size": 1,
                       "attention": True}).encode()
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.connect(("127.0.0.1", port))
    reader.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    time.sleep(6)  # translated, then stuck in the send buffer past the write timeout
    reader.settimeout(10)
    received = b""
    while chunk := reader.recv(65536):
        received += chunk
    reader.close()
    head, _, answer = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
    assert head.startswith(b"HTTP/1.1 200") and len(answer) < length
