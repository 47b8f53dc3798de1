"""Property test: requests generated from the OpenAPI schema of /translate (and arbitrary bytes)
never get a 5xx, and every error is JSON with an ``error`` field."""

import json

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_serve import StubTranslator

from serve.app import create_app
from serve.registry import Registry
from serve.settings import Settings

registry = Registry()
registry.add(StubTranslator())
app = create_app(Settings(processes=False), registry)
schema = app.openapi()["paths"]["/translate"]["post"]["requestBody"]["content"][
    "application/json"]["schema"]


def check(response):
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert "error" in response.json()


# Finite floats: JSON has no infinity (raw "Infinity" bodies are tried in test_serve.py).
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
ANY_JSON = st.recursive(st.none() | st.booleans() | st.integers() | FLOATS | st.text(max_size=30),
                        lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)


def for_type(spec: dict):
    """Values of a JSON-schema property's declared type(s), as the OpenAPI schema states them."""
    options = spec.get("anyOf", [spec])
    strategies = []
    for option in options:
        kind = option.get("type")
        if kind == "string":
            strategies.append(TEXT | st.sampled_from(["de", "en", "fr", "auto", "text", "html"]))
        elif kind == "integer":
            strategies.append(st.integers(-3, 12))
        elif kind == "boolean":
            strategies.append(st.booleans())
        elif kind == "array":
            strategies.append(st.lists(TEXT, max_size=4))
        elif kind == "null":
            strategies.append(st.none())
    return st.one_of(strategies) if strategies else ANY_JSON


@st.composite
def from_openapi(draw):
    """A body built from the schema's properties: each present or not, usually of its declared
    type, sometimes of any JSON type."""
    body = {}
    for name, spec in schema["properties"].items():
        if draw(st.booleans()) or name in schema.get("required", []) and draw(st.booleans()):
            body[name] = draw(for_type(spec) if draw(st.integers(0, 4)) else ANY_JSON)
    return body


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(from_openapi())
def test_schema_generated_requests_never_5xx(body):
    with TestClient(app) as client:
        check(client.post("/translate", json=body))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.binary(max_size=200),
                 st.dictionaries(st.text(max_size=8), st.recursive(
                     st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=3), max_leaves=5), max_size=6)
                 .map(lambda d: json.dumps(d).encode())))
def test_arbitrary_bodies_never_5xx(body):
    with TestClient(app) as client:
        check(client.post("/translate", content=body, headers={"content-type": "application/json"}))
