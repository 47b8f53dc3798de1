"""The C passes around int8 products (nmt/kernels) give PyTorch's values bit for bit."""

import logging

import pytest
import torch

from nmt.decode import kernels
from nmt.decode.quantize import Int8Linear, quantize_rows


@pytest.fixture
def native():
    library = kernels.load()
    if library is None:
        pytest.skip("no C compiler here: the int8 passes run as PyTorch operations")
    return library


def _awkward_rows(k: int) -> torch.Tensor:
    """Rows of very different ranges, exact halves that round to even, a row of zeros."""
    torch.manual_seed(0)
    x = torch.randn(7, k) * torch.tensor([1e-30, 1e-3, 1.0, 1.0, 50.0, 1e6, 0.0])[:, None]
    halves = torch.tensor([127.0, 0.5, -0.5, 1.5, 2.5, -2.5, 126.5])[:k]  # scale 127 / 127 = 1
    x[3, :len(halves)] = halves
    return x


@pytest.mark.parametrize("k", [1, 15, 16, 100, 256, 1024])
def test_quantize_rows_equals_pytorch(native, k):
    x = _awkward_rows(k)
    q, scale = kernels.quantize_rows(native, x)
    expected_q, expected_scale = quantize_rows(x)
    assert q.dtype == torch.int8 and torch.equal(q, expected_q)
    assert torch.equal(scale, expected_scale)
    around_128, _ = kernels.quantize_rows(native, x, zero_point=128)
    assert around_128.dtype == torch.uint8 and torch.equal(around_128, quantize_rows(x, 128)[0])


@pytest.mark.parametrize("with_bias", [True, False])
def test_rescale_equals_pytorch_in_the_formulas_order(native, with_bias):
    torch.manual_seed(0)
    sums = torch.randint(-2 ** 23, 2 ** 23, (5, 37), dtype=torch.int32)
    rows, cols = torch.rand(5, 1) * 1e-3, torch.rand(37) * 1e-2
    bias = torch.randn(37) if with_bias else None
    expected = sums.float().mul_(rows).mul_(cols)
    if with_bias:
        expected.add_(bias)
    assert torch.equal(kernels.rescale(native, sums, rows, cols, bias), expected)
    float_sums = sums.float()
    assert kernels.rescale(native, float_sums, rows, cols, bias) is float_sums  # in place
    assert torch.equal(float_sums, expected)


# (in, out): AMX from 4 rows where in is a multiple of 64, VNNI below and for in = 36; out not a
# multiple of 16 or 64 (the last block of outputs partly padding); in = 30 cannot be packed.
@pytest.mark.parametrize("shape", [(256, 768), (1024, 256), (256, 4030), (36, 50), (30, 20)])
def test_int8_linear_is_the_same_layer_without_kernels(native, monkeypatch, shape):
    torch.manual_seed(0)
    layer = Int8Linear(torch.nn.Linear(*shape))
    assert (layer.native is None) == (shape[0] % 4 != 0 or native.product_level == 0)
    inputs = [torch.randn(rows, shape[0]) for rows in (1, 2, 3, 4, 17, 70, 200)]
    inputs[-1][5] = 0.0  # a row of zeros: scale 1e-12 / 127
    with_kernels = [layer(x) for x in inputs]
    monkeypatch.setattr(kernels, "load", lambda: None)
    assert all(torch.equal(layer(x), y) for x, y in zip(inputs, with_kernels))


def test_translations_are_the_same_without_kernels(native, monkeypatch, trained_model_dir):
    from nmt.decode.translator import Translator

    translator = Translator.load(trained_model_dir)
    texts = ["Ein hund läuft im park.", "Eine frau sitzt im garten und ein kind spielt."]
    with_kernels = translator.translate_full(texts, beam_size=3)
    monkeypatch.setattr(kernels, "load", lambda: None)
    without = translator.translate_full(texts, beam_size=3)
    assert [(t.text, t.score) for t in with_kernels] == [(t.text, t.score) for t in without]


@pytest.fixture
def fresh_load(monkeypatch, tmp_path):
    """``kernels.load`` as on a machine that has not built them, caching into tmp_path."""
    monkeypatch.setenv("NMT_CACHE_DIR", str(tmp_path))
    kernels.load.cache_clear()
    yield kernels.load
    kernels.load.cache_clear()  # the next caller builds or finds the real cache again


def test_kernels_are_built_once_into_the_cache(native, fresh_load, tmp_path):
    assert fresh_load() is not None
    built = list((tmp_path / "kernels").iterdir())
    assert len(built) == 1 and built[0].suffix == ".so"  # no partial file left beside it
    fresh_load.cache_clear()
    stamp = built[0].stat().st_mtime_ns
    assert fresh_load() is not None and built[0].stat().st_mtime_ns == stamp


def test_without_a_compiler_or_when_switched_off_pytorch_runs(fresh_load, monkeypatch, caplog):
    monkeypatch.setenv("CC", "no-such-compiler")
    with caplog.at_level(logging.INFO, logger="nmt.decode.kernels"):
        assert fresh_load() is None
    assert "no C compiler" in caplog.text
    fresh_load.cache_clear()
    monkeypatch.delenv("CC")
    monkeypatch.setenv("NMT_NATIVE_KERNELS", "0")
    assert fresh_load() is None


def test_a_compiler_that_fails_is_reported_not_raised(fresh_load, monkeypatch, tmp_path, caplog):
    failing = tmp_path / "cc"
    failing.write_text("#!/bin/sh\necho 'cc: internal error' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("CC", str(failing))
    with caplog.at_level(logging.WARNING, logger="nmt.decode.kernels"):
        assert fresh_load() is None
    assert "internal error" in caplog.text
    assert not any((tmp_path / "kernels").iterdir())  # nothing half-written is left to load
