"""`nmt serve` as a user runs it: serves what is under models/, and SIGTERM lets requests in
flight finish before the process exits."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path, trained_model_dir):
    shutil.copytree(trained_model_dir, tmp_path / "models" / "tiny-de-en")
    port = free_port()
    env = {**os.environ, "NMT_HEADER_TIMEOUT_S": "1", "NMT_BODY_TIMEOUT_S": "1"}
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


def test_serves_models_dir_and_finishes_in_flight_requests_on_sigterm(served):
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
    process.send_signal(signal.SIGTERM)
    thread.join(timeout=120)
    response = result["response"]
    assert response.status_code == 200
    assert len(response.json()["translatedText"]) == 3
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells of it
    assert process.wait(timeout=60) in (0, -signal.SIGTERM)
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
