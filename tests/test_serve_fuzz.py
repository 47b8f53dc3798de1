"""Property test: requests generated from the OpenAPI schema of /translate (and arbitrary bytes)
never get a 5xx, and every error is JSON with an ``error`` field."""

import json

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from test_serve import StubTranslator

from serve.app import create_app
from serve.registry import Registry
from serve.settings import Settings

registry = Registry()
registry.add(StubTranslator())
app = create_app(Settings(), registry)
schema = app.openapi()["paths"]["/translate"]["post"]["requestBody"]["content"][
    "application/json"]["schema"]


def check(response):
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert "error" in response.json()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(from_schema(schema))
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
