"""The Transformer's decoding step in one C call (``nmt/decode/kernels/decoder_step.c``), for int8 models.

A decoding step in PyTorch is some 390 operations of a few microseconds each whatever their size;
at the sizes of decoding that overhead, not arithmetic, was most of a step. Here the whole step
(embedding, every layer, the final norm, the output projection and log_softmax) is one call, with
the int8 products of ``Int8Linear`` (bit for bit the same products) and the float parts computed
by the same formulas in another order (a few units in the last place apart from PyTorch's).

The self-attention caches are stored by position with a table of each hypothesis' ancestors, so
reordering beams copies a table of small integers, never the caches. ``NativeState`` and the
encoder's ``TransformerMemory`` have the ``select`` of every model state, so the search drives
this step as it drives any model.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import torch

from nmt.decode import kernels

pointer, size = ctypes.c_void_p, ctypes.c_int64

# The self-attention cache holds this many positions at first, twice as many each time it fills.
FIRST_CAPACITY = 32


class CLayer(ctypes.Structure):
    _fields_ = [("norm_weight", pointer * 3), ("norm_bias", pointer * 3),
                *((name, kernels.Int8Weights)
                  for name in ("qkv", "self_out", "cross_q", "cross_out", "ff1", "ff2"))]


class CDecoder(ctypes.Structure):
    _fields_ = [("layers", size), ("d_model", size), ("heads", size), ("d_ff", size),
                ("max_positions", size), ("embed", pointer), ("positions", pointer),
                ("final_weight", pointer), ("final_bias", pointer), ("layer", ctypes.POINTER(CLayer))]


class CCache(ctypes.Structure):
    _fields_ = [("keys", pointer), ("values", pointer)]


def _layer_linears(layer) -> dict:
    """A decoder layer's products, by their names in the C ``Layer``."""
    return {"qkv": layer.self_attn.w_qkv, "self_out": layer.self_attn.w_o,
            "cross_q": layer.cross_attn.w_q, "cross_out": layer.cross_attn.w_o,
            "ff1": layer.ffn.w_1, "ff2": layer.ffn.w_2}


def _c_linear(layer) -> kernels.Int8Weights | None:
    """What the C step reads of an Int8Linear with packed weights (its ``native``), else None
    (an fp32 layer has no ``native``)."""
    native = getattr(layer, "native", None)
    return None if native is None else native.c


@dataclass
class NativeState:
    """Self-attention keys/values by position, (capacity, width, d_model) per layer, shared by
    the states of one search; ``ancestors`` (rows, capacity): row r's row at each position."""

    caches: list[tuple[torch.Tensor, torch.Tensor]]
    c_caches: ctypes.Array  # the same, as the C step reads them
    ancestors: torch.Tensor
    step: int
    parents: torch.Tensor | None = None  # row i of the next step continues row parents[i]

    @classmethod
    def new(cls, caches, ancestors: torch.Tensor, step: int = 0,
            parents: torch.Tensor | None = None) -> NativeState:
        c_caches = (CCache * len(caches))(*[CCache(k.data_ptr(), v.data_ptr()) for k, v in caches])
        return cls(caches, c_caches, ancestors, step, parents)

    def select(self, indices: torch.Tensor) -> NativeState:
        parents = indices if self.parents is None else self.parents.index_select(0, indices)
        return NativeState(self.caches, self.c_caches, self.ancestors, self.step, parents)


class NativeStep:
    """``Transformer.decode_step`` for an int8 pre-norm Transformer, in one C call. It reads the
    model's tensors where they are: built by ``quantize`` once the model is final."""

    def __init__(self, model, library):
        self.model, self.library = model, library
        layers = model.decoder_layers
        self.heads, self.d_model = layers[0].self_attn.n_heads, model.d_model
        self.c_layers = (CLayer * len(layers))()
        for c_layer, layer in zip(self.c_layers, layers):
            for i, sublayer in enumerate(layer.sublayers):
                c_layer.norm_weight[i] = sublayer.norm.weight.data_ptr()
                c_layer.norm_bias[i] = sublayer.norm.bias.data_ptr()
            for name, linear in _layer_linears(layer).items():
                setattr(c_layer, name, _c_linear(linear))
        self.c_decoder = CDecoder(len(layers), self.d_model, self.heads, layers[0].ffn.w_1.out_features,
                                  model.positions.size(0), model.embed.weight.data_ptr(),
                                  model.positions.data_ptr(), model.decoder_norm.weight.data_ptr(),
                                  model.decoder_norm.bias.data_ptr(), self.c_layers)

    @classmethod
    def build(cls, model) -> NativeStep | None:
        """The native step for ``model`` (int8, pre-norm, heads of a multiple of 16 numbers), or
        None where it cannot run (no kernels here, or a model it does not cover)."""
        library = kernels.load()
        if library is None or library.product_level == 0 or model.output is None:
            return None
        layers = model.decoder_layers
        linears = [model.output, *(linear for layer in layers
                                   for linear in _layer_linears(layer).values())]
        if (any(_c_linear(linear) is None for linear in linears)
                or not layers[0].sublayers[0].pre_norm or layers[0].self_attn.d_k % 16
                or not layers[0].self_attn.scaled  # the C step divides by sqrt(d_k)
                or any(type(s.norm) is not torch.nn.LayerNorm or s.norm.eps != 1e-5
                       for layer in layers for s in layer.sublayers)):
            return None
        return cls(model, library)

    def covers(self, project) -> bool:
        return project is None or _c_linear(project) is not None

    def __call__(self, tokens: torch.Tensor, memory, state: NativeState | None, project=None):
        rows, sentences = tokens.size(0), memory.src_attn_mask.size(0)
        if state is None:
            state = self._empty(rows)
        elif state.step == state.ancestors.size(1):
            state = self._grown(state)
        caches, step = state.caches, state.step
        if step >= self.c_decoder.max_positions:
            raise ValueError(f"a target of more than {step} tokens: the model has positions "
                             f"for {self.c_decoder.max_positions}")
        capacity = state.ancestors.size(1)
        ancestors = state.ancestors if state.parents is None else torch.empty(
            rows, capacity, dtype=torch.int32)
        output = _c_linear(project if project is not None else self.model.output)
        log_probs = torch.empty(rows, output.out_features)
        cross_kv = [(k.contiguous(), v.contiguous()) for k, v in memory.cross_kv]  # as they are
        cross_keys = (pointer * len(caches))(*[k.data_ptr() for k, _ in cross_kv])
        cross_values = (pointer * len(caches))(*[v.data_ptr() for _, v in cross_kv])
        mask = memory.src_attn_mask.reshape(sentences, -1).contiguous()
        tokens = tokens.contiguous()
        status = self.library.decoder_step(
            ctypes.byref(self.c_decoder), ctypes.byref(output), rows, rows // sentences,
            tokens.data_ptr(), step, None if state.parents is None else state.parents.data_ptr(),
            state.ancestors.data_ptr(), ancestors.data_ptr(), capacity, state.c_caches,
            caches[0][0].size(1), cross_keys, cross_values, mask.data_ptr(), mask.size(1),
            log_probs.data_ptr())
        if status:
            raise MemoryError("decoding step: out of memory")
        return log_probs, NativeState(caches, state.c_caches, ancestors, step + 1)

    def _empty(self, rows: int) -> NativeState:
        caches = [(torch.empty(FIRST_CAPACITY, rows, self.d_model),
                   torch.empty(FIRST_CAPACITY, rows, self.d_model)) for _ in self.c_layers]
        return NativeState.new(caches, torch.empty(rows, FIRST_CAPACITY, dtype=torch.int32))

    def _grown(self, state: NativeState) -> NativeState:
        """Room for twice as many positions, what was written copied over (rare: 32, 64, ...)."""
        capacity, width = state.ancestors.size(1), state.caches[0][0].size(1)
        caches = []
        for keys, values in state.caches:
            grown = torch.empty(2 * capacity, width, self.d_model), torch.empty(2 * capacity, width,
                                                                               self.d_model)
            grown[0][:capacity], grown[1][:capacity] = keys, values
            caches.append(grown)
        ancestors = torch.empty(state.ancestors.size(0), 2 * capacity, dtype=torch.int32)
        ancestors[:, :capacity] = state.ancestors
        return NativeState.new(caches, ancestors, state.step, state.parents)
