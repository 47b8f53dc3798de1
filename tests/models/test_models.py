"""Both models: cached step-by-step decoding equals the full forward pass; model directories
round-trip and damaged ones are reported naming the file."""

import pytest
import torch

from nmt.core.config import Config, ModelConfig
from nmt.core.errors import NmtError
from nmt.data.tokenizer import BOS_ID, PAD_ID
from nmt.decode.translator import Translator
from nmt.models import build_model
from nmt.models.directory import load_weights, save_model_dir, write_checksums

ARCHS = {
    "transformer": ModelConfig(d_model=32, n_heads=4, n_encoder_layers=2, n_decoder_layers=2,
                               d_ff=64, dropout=0.1),
    "rnn": ModelConfig(arch="rnn", embed_dim=16, hidden_size=32, dropout=0.1),
}


def sample_batch(vocab=50):
    torch.manual_seed(1)
    src = torch.randint(4, vocab, (3, 7))
    src[0, 5:] = PAD_ID
    tgt_in = torch.cat([torch.full((3, 1), BOS_ID), torch.randint(4, vocab, (3, 5))], dim=1)
    return src, src != PAD_ID, tgt_in


@pytest.mark.parametrize("arch", ARCHS)
def test_cached_decoding_equals_full_forward(arch):
    torch.manual_seed(0)
    model = build_model(ARCHS[arch], 50).eval()
    src, src_mask, tgt_in = sample_batch()
    with torch.no_grad():
        full = model(src, src_mask, tgt_in).float().log_softmax(-1)
        memory, state, steps = model.encode(src, src_mask), None, []
        for t in range(tgt_in.size(1)):
            log_probs, state = model.decode_step(tgt_in[:, t], memory, state)
            steps.append(log_probs)
            uncached = model.decode_prefix(tgt_in[:, : t + 1], memory)
            torch.testing.assert_close(log_probs, uncached, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_state_select_reorders_rows(arch):
    torch.manual_seed(0)
    model = build_model(ARCHS[arch], 50).eval()
    src, src_mask, tgt_in = sample_batch()
    order = torch.tensor([2, 0, 1])
    with torch.no_grad():
        memory = model.encode(src, src_mask)
        _, state = model.decode_step(tgt_in[:, 0], memory, None)
        moved, _ = model.decode_step(tgt_in[order, 1], memory.select(order), state.select(order))
        direct, _ = model.decode_step(tgt_in[:, 1], memory, state)
    torch.testing.assert_close(moved, direct[order])


def test_memory_keys_and_values_are_contiguous():
    """Decoding reads every layer's memory keys/values at every step: stored as a transposed
    view, each read copied them again (greedy batches of 64 about 6% slower, two alternated pairs)."""
    model = build_model(ARCHS["transformer"], 50).eval()
    src, src_mask, _ = sample_batch()
    with torch.no_grad():
        memory = model.encode(src, src_mask)
    assert all(k.is_contiguous() and v.is_contiguous() for k, v in memory.cross_kv)


@pytest.mark.parametrize("arch", ARCHS)
def test_attention_weights_on_request(arch):
    model = build_model(ARCHS[arch], 50).eval()
    src, src_mask, tgt_in = sample_batch()
    with torch.no_grad():
        logits, weights = model(src, src_mask, tgt_in, need_attention=True)
    assert weights.shape == (3, tgt_in.size(1), src.size(1))
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, tgt_in.size(1)))
    assert float(weights[0, :, 5:].abs().max()) == 0.0  # padding gets no attention


def save_tiny(tmp_path, toy_tokenizer, arch="transformer"):
    config = Config(model=ARCHS[arch])
    model = build_model(config.model, toy_tokenizer.vocab_size).eval()
    return save_model_dir(tmp_path / "m", model, config, toy_tokenizer.path), model


@pytest.mark.parametrize("arch", ARCHS)
def test_model_dir_round_trip(tmp_path, toy_tokenizer, arch):
    path, model = save_tiny(tmp_path, toy_tokenizer, arch)
    loaded = Translator.load(path, quantize="none")  # exact; int8 is tested in test_quantize
    src, src_mask, tgt_in = sample_batch(toy_tokenizer.vocab_size)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(src, src_mask, tgt_in), model(src, src_mask, tgt_in))
    assert sorted(p.name for p in path.iterdir()) == ["SHA256SUMS", "config.json",
                                                     "model.safetensors", "spm.model"]


def test_truncated_weights_are_reported(tmp_path, toy_tokenizer):
    path, _ = save_tiny(tmp_path, toy_tokenizer)
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(NmtError, match="model.safetensors: checksum mismatch"):
        Translator.load(path)
    (path / "SHA256SUMS").unlink()  # unverifiable: refused
    with pytest.raises(NmtError, match="no SHA256SUMS, so its files cannot be checked"):
        Translator.load(path)
    write_checksums(path)  # checksums of the damaged file: the loader still tells
    with pytest.raises(NmtError, match="model.safetensors: corrupted or truncated"):
        Translator.load(path)


def test_corrupted_weights_are_reported(tmp_path, toy_tokenizer):
    path, model = save_tiny(tmp_path, toy_tokenizer)
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[3] ^= 0xFF  # the header length: the file no longer parses
    weights.write_bytes(bytes(data))
    with pytest.raises(NmtError, match="model.safetensors"):
        load_weights(model, weights)


def test_not_a_model_dir(tmp_path):
    with pytest.raises(NmtError, match="not a model directory"):
        Translator.load(tmp_path)


def test_a_config_that_does_not_fit_its_weights_is_refused_before_anything_is_built(
        tmp_path, toy_tokenizer, monkeypatch):
    """100,000 layers in config.json allocated until memory ran out; now the rules bound every
    size, and a size within them that the weights file does not have is named before the
    model is built (on the meta device, which allocates nothing)."""
    import json

    import nmt.models
    from nmt.core.config import ConfigError, load_config

    path, _ = save_tiny(tmp_path, toy_tokenizer)
    config = json.loads((path / "config.json").read_text())
    config["model"]["n_encoder_layers"] = 100_000
    (path / "config.json").write_text(json.dumps(config))
    write_checksums(path)
    with pytest.raises(NmtError, match="n_encoder_layers = 100000: must be >= 1 and <= 64"):
        Translator.load(path)
    config["model"]["n_encoder_layers"] = 40
    (path / "config.json").write_text(json.dumps(config))
    write_checksums(path)
    real = nmt.models.build_model

    def on_meta_only(model_config, vocab_size):
        assert torch.get_default_device().type == "meta", "a model was allocated"
        return real(model_config, vocab_size)

    monkeypatch.setattr(nmt.models, "build_model", on_meta_only)
    with pytest.raises(NmtError, match=r"do not match the config: encoder_layers\.\d+\..* is missing"):
        Translator.load(path)
    with pytest.raises(ConfigError, match="more than the 2,000,000,000"):
        load_config(overrides=["model.d_model=16384", "model.d_ff=65536", "model.n_encoder_layers=64"])
