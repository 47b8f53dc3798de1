import pytest
import torch

from nmt.decode.quantize import Int8Linear, quantize, quantize_rows


@pytest.mark.parametrize("shape", [(256, 256), (256, 1024), (1280, 256), (256, 8000), (7, 5)])
def test_int8_linear_is_close_to_fp32(shape):
    torch.manual_seed(0)
    linear = torch.nn.Linear(*shape)
    x = torch.randn(3, 11, shape[0])
    exact, approx = linear(x), Int8Linear(linear)(x)
    assert approx.shape == exact.shape
    assert (approx - exact).norm() / exact.norm() < 0.02


def test_int8_linear_rows_do_not_depend_on_their_batch():
    # One row with a huge range must not cost the others their precision: per-row scales.
    torch.manual_seed(0)
    layer = Int8Linear(torch.nn.Linear(64, 32))
    rows = torch.randn(5, 64)
    crowd = torch.cat([rows, 1000 * torch.randn(7, 64)])
    assert torch.equal(layer(crowd)[:5], layer(rows))
    assert torch.equal(layer(rows[2:3]), layer(rows)[2:3])


def test_quantize_rows_round_trips_within_half_a_step():
    x = torch.randn(4, 100)
    q, scale = quantize_rows(x)
    assert q.dtype == torch.int8 and scale.shape == (4, 1)
    assert ((q.float() * scale - x).abs() <= scale / 2 + 1e-6).all()


def test_quantize_unties_only_the_inference_copy(trained_model_dir):
    from nmt.models import build_model
    from nmt.models.directory import load_weights, read_model_config

    config = read_model_config(trained_model_dir)
    model = build_model(config.model, _vocab(trained_model_dir))
    load_weights(model, trained_model_dir / "model.safetensors")
    src = torch.tensor([[5, 6, 7, 2]])
    reference = model(src, src != 0, torch.tensor([[1, 5, 6]])).detach()
    model = quantize(model, "int8")
    assert isinstance(model.output, Int8Linear) and not model.training
    out = model(src, src != 0, torch.tensor([[1, 5, 6]]))
    assert (out - reference).abs().max() < 0.1 * reference.abs().max()


def _vocab(model_dir) -> int:
    from nmt.data.tokenizer import Tokenizer

    return Tokenizer(model_dir / "spm.model").vocab_size


@pytest.mark.parametrize("shape", [(256, 768), (1024, 256), (256, 4030)])
def test_int8_linear_gives_the_same_values_on_either_product(shape):
    """oneDNN's prepacked product serves large batches, torch._int_mm small ones: both sum
    exactly and rescale in the same order, so a row's values cannot depend on which one the
    size of its batch picked."""
    torch.manual_seed(0)
    layer = Int8Linear(torch.nn.Linear(*shape))
    layer.native = None  # the PyTorch products (the C one: tests/decode/test_kernels.py)
    if layer.packed is None:
        pytest.skip("this PyTorch build has no oneDNN int8 product (torch._int_mm serves all)")
    for rows in (1, 2, 5, 64, 130):
        x = torch.randn(rows, shape[0])
        layer.packed_from_rows = 1
        packed = layer(x)
        layer.packed_from_rows = rows + 1
        assert torch.equal(packed, layer(x))
    layer.packed_from_rows = 1  # one row goes in as uint8 around 128: the same sums
    assert torch.equal(layer(x[:1]), packed[:1])


def test_int8_linear_without_onednn_is_the_same_layer(monkeypatch):
    from nmt.decode import quantize as quantize_module

    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 4030)
    x = torch.randn(70, 256)
    layer = Int8Linear(linear)
    layer.native = None  # oneDNN's product, not the C one
    expected = layer(x)
    monkeypatch.setattr(quantize_module, "_prepacked", lambda weight: None)
    fallback = Int8Linear(linear)
    fallback.native = None
    assert fallback.packed is None and torch.equal(fallback(x), expected)


def test_int8_linear_computes_its_formula_exactly():
    """(sum_k q(x)_ik q(W)_jk) * s(x)_i * s(W)_j + b_j in that order, whichever product runs:
    a change of order moves the last bit, which was enough to turn one degenerate input's
    translation from 79 subwords into a run to the length limit."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 4030)
    layer = Int8Linear(linear)
    for rows in (1, 3, 70):
        x = torch.randn(rows, 256)
        q, row_scale = quantize_rows(x)
        expected = torch._int_mm(q, layer.weight.t()).float().mul_(row_scale).mul_(layer.scale)
        assert torch.equal(layer(x), expected.add_(linear.bias.detach()))
