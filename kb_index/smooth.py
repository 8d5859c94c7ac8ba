"""SmoothQuant-style rescaling of a model's Linear layers before dynamic int8 quantisation.

Dynamic quantisation (``onnx_export``) gives each MatMul input one scale over the whole tensor.
all-mpnet-base-v2 has a few hidden channels whose activations are tens of times larger than the
rest, so that one scale leaves the other channels a handful of int8 steps (mean cosine between
int8 and fp32 embeddings 0.90; MiniLM 0.99). Following SmoothQuant (Xiao et al., 2023,
arXiv 2211.10438), each Linear's input channel ``j`` is divided by

    s_j = max|X_j| ** alpha / max_i |W_ij| ** (1 - alpha)

and its weight column multiplied by ``s_j``: ``(x / s) @ (W * s).T == x @ W.T``, an identity in
exact arithmetic, which moves the activation outliers into the weights (quantised per output
channel, where they cost little). ``max|X_j|`` comes from a fixed calibration set.

The division is an explicit ``Mul`` in front of each MatMul, not folded into the preceding
LayerNorm: MPNet and BERT are post-LN, so a LayerNorm's output is the residual stream as well as
the next Linear's input, and rescaling its gamma/beta would change the residual too (and most of
the damage is in the second FFN Linear, which the GELU feeds, not a LayerNorm). Each Linear gets its
own scale, so q, k and v no longer share one quantised input: nothing measurable at mpnet's size,
15-18 % of MiniLM's embedding time, which is why the export smooths only a model whose plain int8
graph is poor (``onnx_export.export``, ``onnx_model.MIN_FIDELITY``).

Calibration texts: a fixed set bundled in ``data/calibration.json`` (the demo store's 164
passages and 199 questions), not the KB being indexed: an export is cached per model and shared
by every KB (and must not change when a KB is re-ingested, or every vector would move); the
outlier channels are a property of the model, not of the texts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from kb_index.onnx_model import SMOOTH_ALPHA as ALPHA
from kb_index.onnx_model import calibration_texts

MIN_SCALE = 1e-5


class SmoothedLinear(torch.nn.Module):
    """``linear(x * inv_scale)`` with the weight's input columns multiplied by the scale."""

    inv_scale: torch.Tensor

    def __init__(self, linear: torch.nn.Linear, scale: torch.Tensor) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None)
        with torch.no_grad():
            self.linear.weight.copy_(linear.weight * scale[None, :])
            if linear.bias is not None:
                self.linear.bias.copy_(linear.bias)
        self.register_buffer("inv_scale", (1.0 / scale).to(linear.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear(x * self.inv_scale)
        return out


def record_ranges(model: torch.nn.Module, run: Callable[[], object]) -> dict[str, torch.Tensor]:
    """Per input channel, the largest |activation| entering each Linear of ``model`` while
    ``run()`` drives it (Linears it never reaches are left out)."""
    ranges: dict[str, torch.Tensor] = {}
    handles = []

    def hook(name: str) -> Callable[[torch.nn.Module, tuple[torch.Tensor, ...]], None]:
        def record(_module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            m = args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(0)
            ranges[name] = torch.maximum(ranges[name], m) if name in ranges else m

        return record

    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            handles.append(mod.register_forward_pre_hook(hook(name)))
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return ranges


def input_ranges(model: Any, texts: list[str]) -> dict[str, torch.Tensor]:
    """:func:`record_ranges` of a SentenceTransformer over ``texts``, embedded one at a time as the
    int8 graph serves them (no padding tokens in the statistics)."""

    def run() -> None:
        for t in texts:
            model.encode([t], batch_size=1, convert_to_tensor=True, show_progress_bar=False)

    return record_ranges(model, run)


def scales(linear: torch.nn.Linear, act_max: torch.Tensor, alpha: float = ALPHA) -> torch.Tensor:
    """``s_j = max|X_j|**alpha / max_i|W_ij|**(1 - alpha)`` per input channel ``j``."""
    w_max = linear.weight.detach().abs().amax(0).clamp(min=MIN_SCALE)
    s = act_max.clamp(min=MIN_SCALE).pow(alpha) / w_max.pow(1 - alpha)
    return s.clamp(min=MIN_SCALE)


def rescale(model: torch.nn.Module, ranges: dict[str, torch.Tensor], *, alpha: float = ALPHA) -> int:
    """Replace, in place, each Linear named in ``ranges`` by its :class:`SmoothedLinear`; returns
    how many."""
    done = 0
    for name, mod in list(model.named_modules()):
        if name not in ranges or not isinstance(mod, torch.nn.Linear):
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, SmoothedLinear(mod, scales(mod, ranges[name], alpha)))
        done += 1
    return done


def smooth(model: Any, texts: list[str] | None = None, *, alpha: float = ALPHA) -> int:
    """Rescale every Linear of ``model`` (a SentenceTransformer) that the calibration texts (by
    default the bundled set) reach; returns how many. Its outputs are unchanged up to float
    rounding."""
    return rescale(model, input_ranges(model, calibration_texts() if texts is None else texts), alpha=alpha)
