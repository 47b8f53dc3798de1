"""A shipped Transformer as a CTranslate2 model directory: the same weights in a C++ engine.

The model maps one to one onto CTranslate2's ``TransformerSpec``: pre-norm layers with a final
LayerNorm on each stack, embeddings scaled by sqrt(d_model), our sinusoidal table (sin and cos
interleaved, unlike CTranslate2's default) given explicitly, Q/K/V of self-attention and K/V of
cross-attention fused into one matrix each, the output projection tied to the embeddings, and eos
appended to the source (``add_source_eos``) as ``batching.encode_source`` does. Vocabulary: the
SentencePiece pieces in id order, so ids agree in both engines.

The export checks itself: both engines translate sentences greedily and must agree on nearly all
(float sums in another order may flip a near-tie).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from nmt.core.errors import NmtError
from nmt.core.files import staged
from nmt.data.batching import encode_source, pad
from nmt.data.tokenizer import PAD_ID, Tokenizer
from nmt.decode.search import greedy_search
from nmt.models.directory import load_model, read_model_config

QUANTIZATIONS = ("none", "int8")
SELF_CHECK_AGREEMENT = 0.9  # of the sentences; 1,000 of 1,000 test_2016_flickr ones agree


def require_ctranslate2():
    try:
        import ctranslate2
    except ImportError:
        raise NmtError("CTranslate2 is not installed: pip install -e '.[export]'") from None
    return ctranslate2


def load_transformer(model_dir: Path):
    """The fp32 model, its config and tokenizer; a clear error for models CTranslate2 cannot run."""
    config = read_model_config(model_dir)
    if config.model.arch != "transformer":
        raise NmtError(f"{model_dir}: an {config.model.arch.upper()} model has no runtime in "
                       "CTranslate2 or Argos Translate; only Transformer models can be exported")
    if not config.model.pre_norm:
        raise NmtError(f"{model_dir}: only pre-norm Transformers are exported")
    if config.model.attention_scale != "sqrt_dk":
        raise NmtError(f"{model_dir}: attention without the 1/sqrt(d_k) scaling (an ablation) "
                       "has no CTranslate2 counterpart")
    tokenizer = Tokenizer(model_dir / "spm.model")
    model = load_model(model_dir, config, tokenizer.vocab_size)
    return model.eval(), config, tokenizer


def _numpy(tensor: torch.Tensor):
    # A copy: the spec's optimize() (int8) rewrites its arrays in place, and a view would
    # rewrite the model's own weights, which the self-check then runs.
    return tensor.detach().float().contiguous().numpy().copy()


def _norm(spec, norm) -> None:
    spec.gamma, spec.beta = _numpy(norm.weight), _numpy(norm.bias)


def _linear(spec, *layers) -> None:
    """One CTranslate2 linear from one or several of ours stacked (fused Q/K/V or K/V)."""
    spec.weight = _numpy(torch.cat([layer.weight for layer in layers]))
    spec.bias = _numpy(torch.cat([layer.bias for layer in layers]))


def _ffn(spec, residual, ffn) -> None:
    _norm(spec.layer_norm, residual.norm)
    _linear(spec.linear_0, ffn.w_1)
    _linear(spec.linear_1, ffn.w_2)


def _self_attention(spec, residual, attention) -> None:
    _norm(spec.layer_norm, residual.norm)
    _linear(spec.linear[0], attention.w_q, attention.w_k, attention.w_v)
    _linear(spec.linear[1], attention.w_o)


def _cross_attention(spec, residual, attention) -> None:
    _norm(spec.layer_norm, residual.norm)
    _linear(spec.linear[0], attention.w_q)
    _linear(spec.linear[1], attention.w_k, attention.w_v)
    _linear(spec.linear[2], attention.w_o)


def build_spec(model, config, tokenizer):
    """The CTranslate2 ``TransformerSpec`` holding ``model``'s weights."""
    require_ctranslate2()
    from ctranslate2.specs import TransformerSpec

    m = config.model
    spec = TransformerSpec.from_config((m.n_encoder_layers, m.n_decoder_layers), m.n_heads,
                                       pre_norm=True)
    positions = _numpy(model.positions)
    embedding = _numpy(model.embed.weight)
    encoder, decoder = spec.encoder, spec.decoder
    encoder.embeddings[0].weight = embedding
    encoder.position_encodings.encodings = positions
    for layer_spec, layer in zip(encoder.layer, model.encoder_layers):
        _self_attention(layer_spec.self_attention, layer.sublayers[0], layer.self_attn)
        _ffn(layer_spec.ffn, layer.sublayers[1], layer.ffn)
    _norm(encoder.layer_norm, model.encoder_norm)
    decoder.embeddings.weight = embedding
    decoder.position_encodings.encodings = positions
    for layer_spec, layer in zip(decoder.layer, model.decoder_layers):
        _self_attention(layer_spec.self_attention, layer.sublayers[0], layer.self_attn)
        _cross_attention(layer_spec.attention, layer.sublayers[1], layer.cross_attn)
        _ffn(layer_spec.ffn, layer.sublayers[2], layer.ffn)
    _norm(decoder.layer_norm, model.decoder_norm)
    decoder.projection.weight = _numpy(model.embed.weight if model.output is None
                                       else model.output.weight)
    spec.config.add_source_eos = True
    spec.config.layer_norm_epsilon = model.encoder_norm.eps
    pieces = tokenizer.id_to_piece(list(range(tokenizer.vocab_size)))
    spec.register_source_vocabulary(pieces)
    spec.register_target_vocabulary(pieces)
    return spec


@dataclass(frozen=True)
class SelfCheck:
    sentences: int
    equal: int

    @property
    def agreement(self) -> float:
        return self.equal / max(self.sentences, 1)


def greedy_ids_nmt(model, ids: list[list[int]]) -> list[list[int]]:
    src = pad([encode_source(x) for x in ids])
    return [h[0].tokens for h in greedy_search(model, src, src != PAD_ID)]


def greedy_ids_ct2(translator, tokenizer: Tokenizer, ids: list[list[int]]) -> list[list[int]]:
    results = translator.translate_batch([tokenizer.id_to_piece(x) for x in ids], beam_size=1,
                                         max_decoding_length=256)
    return [[tokenizer.sp.PieceToId(p) for p in r.hypotheses[0]] for r in results]


def self_check(model, tokenizer: Tokenizer, out_dir: Path, sentences: list[str]) -> SelfCheck:
    """Greedy translations of ``sentences`` by both engines, compared token for token."""
    ct2 = require_ctranslate2()
    translator = ct2.Translator(str(out_dir), device="cpu", compute_type="float32")
    ids = tokenizer.encode(sentences)
    with torch.inference_mode():
        ours = greedy_ids_nmt(model, ids)
    theirs = greedy_ids_ct2(translator, tokenizer, ids)
    return SelfCheck(len(ids), sum(a == b for a, b in zip(ours, theirs)))


def export_ctranslate2(model_dir: str | Path, out_dir: str | Path, quantize: str = "none",
                       check_sentences: list[str] | None = None) -> SelfCheck | None:
    """Write ``out_dir`` (model.bin, shared vocabulary, spm.model, the nmt config) atomically;
    with ``check_sentences``, refuse an export whose greedy output disagrees with nmt's."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if quantize not in QUANTIZATIONS:
        raise NmtError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    model, config, tokenizer = load_transformer(model_dir)
    spec = build_spec(model, config, tokenizer)
    spec.validate()
    spec.optimize(quantization=None if quantize == "none" else quantize)
    with staged(out_dir) as staging:
        spec.save(str(staging))
        shutil.copy(model_dir / "spm.model", staging / "spm.model")
        shutil.copy(model_dir / "config.json", staging / "nmt_config.json")
        check = None
        if check_sentences:
            check = self_check(model, tokenizer, staging, check_sentences)
            if quantize == "none" and check.agreement < SELF_CHECK_AGREEMENT:
                raise NmtError(f"{out_dir}: CTranslate2 agrees with nmt on only {check.equal} of "
                               f"{check.sentences} greedy translations; export refused")
    return check
