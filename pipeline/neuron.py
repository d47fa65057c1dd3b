"""Single-step spiking neuron and its surrogate gradients (spec §1).

Forward: s = H(u − u_th) (Eq. 2; u = u_th fires). Backward: ds/du is replaced
by a surrogate chosen by name — `s3nn` (Eq. 3), `linear` (Eq. 22) or
`sigmoid` (Eq. 23).

Every spiking layer is a `Neuron` module: after each forward pass its
`spikes` attribute holds the output (still in the autograd graph), so one
forward pass yields every spike the penalty and the statistics need, and its
`psi` buffer holds ψ (synapse counts, attached by `pipeline.synapses`).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

__all__ = ["NEURON_KINDS", "SURROGATES", "Neuron", "QReLU", "Spike", "neurons", "spike_fn", "surrogate_grad"]


def _check_surrogate(name: str, u_th: float) -> None:
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}; allowed: {', '.join(SURROGATES)}")
    if name == "s3nn" and not u_th > 0:
        raise ValueError(f"the s3nn surrogate needs u_th > 0 (got {u_th}): 1/(τu) is infinite at u = 0")


# On the CPU every fresh activation-sized tensor costs page faults, and a bool mask or
# torch.where costs several float passes, so these helpers write into at most two fresh
# float buffers and update them in place.

def _heaviside(u: Tensor, u_th: float) -> Tensor:
    """s = H(u − u_th) as floats (Eq. 2; u = u_th fires)."""
    return torch.ge(u, u_th, out=torch.empty_like(u))


def _sigmoid_prime(u: Tensor, alpha: float, u_th: float) -> Tensor:
    """σ'_α(u) = σ_α(1 − σ_α)/α with σ_α(u) = 1/(1 + exp((u_th − u)/α)) (Eqs. 4–5)."""
    sig = torch.sub(u, u_th).div_(alpha).sigmoid_()
    return torch.addcmul(sig, sig, sig, value=-1, out=sig).div_(alpha)


def _linear(u: Tensor, s: Tensor, alpha: float, tau: float, u_th: float) -> Tensor:
    """max(0, 1 − |u − u_th|) (Eq. 22)."""
    return torch.sub(u, u_th).abs_().neg_().add_(1).clamp_(min=0)


def _sigmoid(u: Tensor, s: Tensor, alpha: float, tau: float, u_th: float) -> Tensor:
    """σ'_α(u) (Eq. 23)."""
    return _sigmoid_prime(u, alpha, u_th)


def _s3nn(u: Tensor, s: Tensor, alpha: float, tau: float, u_th: float) -> Tensor:
    """1/(τu) where s = 1, σ'_α elsewhere (Eq. 3), blended exactly as s·above + (1 − s)·σ'_α."""
    sg = _sigmoid_prime(u, alpha, u_th)
    above = u.clamp(min=u_th).mul_(tau).reciprocal_()  # the clamp keeps the unused branch finite
    return above.mul_(s).add_(sg.addcmul_(sg, s, value=-1))


#: Surrogates of ds/du by name: f(u, s, α, τ, u_th) → a fresh tensor (s = the spikes at u).
SURROGATES: dict[str, Callable[[Tensor, Tensor, float, float, float], Tensor]] = {
    "s3nn": _s3nn, "linear": _linear, "sigmoid": _sigmoid,
}


def _surrogate(u: Tensor, s: Tensor, surrogate: str, alpha: float, tau: float, u_th: float) -> Tensor:
    """The surrogate of ds/du at `u`, whose spikes are `s` (a fresh tensor)."""
    return SURROGATES[surrogate](u, s, alpha, tau, u_th)


def surrogate_grad(u: Tensor, surrogate: str, alpha: float, tau: float, u_th: float) -> Tensor:
    """The surrogate of ds/du at membrane potential `u` (finite for every real u)."""
    _check_surrogate(surrogate, u_th)
    return _surrogate(u, _heaviside(u, u_th), surrogate, alpha, tau, u_th)


class _SpikeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: Tensor, surrogate: str, alpha: float, tau: float, u_th: float) -> Tensor:
        s = _heaviside(u, u_th)
        ctx.save_for_backward(u, s)
        ctx.params = (surrogate, alpha, tau, u_th)
        return s

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        u, s = ctx.saved_tensors
        return _surrogate(u, s, *ctx.params).mul_(grad_out), None, None, None, None


def spike_fn(
    u: Tensor, surrogate: str = "s3nn", alpha: float = 0.25, tau: float = 0.6, u_th: float = 1.0
) -> Tensor:
    """H(u − u_th) with the named surrogate gradient."""
    _check_surrogate(surrogate, u_th)
    return _SpikeFunction.apply(u, surrogate, alpha, tau, u_th)


class Neuron(nn.Module):
    """Base of every spiking (or spike-counting) layer.

    `spikes` is the last output; `psi` the ψ buffer (non-persistent: it is
    derived from the architecture, so checkpoints need not carry it).
    """

    spikes: Tensor | None

    def __init__(self) -> None:
        super().__init__()
        self.spikes = None
        self.register_buffer("psi", None, persistent=False)

    def fire(self, u: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, u: Tensor) -> Tensor:
        self.spikes = self.fire(u)
        return self.spikes


class Spike(Neuron):
    """Single-step spiking activation s = H(u − u_th) (Eq. 2)."""

    def __init__(
        self, surrogate: str = "s3nn", alpha: float = 0.25, tau: float = 0.6, u_th: float = 1.0
    ) -> None:
        super().__init__()
        _check_surrogate(surrogate, u_th)
        self.surrogate, self.alpha, self.tau, self.u_th = surrogate, alpha, tau, u_th

    def fire(self, u: Tensor) -> Tensor:
        return _SpikeFunction.apply(u, self.surrogate, self.alpha, self.tau, self.u_th)

    def extra_repr(self) -> str:
        return f"surrogate={self.surrogate}, alpha={self.alpha}, tau={self.tau}, u_th={self.u_th}"


class _QuantizedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0).floor()

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_out * (x > 0).to(grad_out.dtype)  # straight-through where x > 0


class QReLU(Neuron):
    """Quantised ReLU floor(max(x, 0)): the number of spikes an IF neuron with
    threshold 1 would emit (ANN→SNN baseline, spec §7); straight-through backward."""

    def fire(self, u: Tensor) -> Tensor:
        return _QuantizedReLU.apply(u)


#: Neuron kinds a model can be built with: the SNN's spike, or the quantised ReLU of the ANN→SNN
#: baseline (spec §7). Each entry builds one layer from the surrogate settings (QReLU ignores them).
NEURON_KINDS: dict[str, Callable[..., Neuron]] = {
    "spike": Spike,
    "qrelu": lambda *surrogate_settings: QReLU(),
}


def neurons(model: nn.Module) -> list[tuple[str, Neuron]]:
    """Every `Neuron` of `model` with its qualified name, in registration order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, Neuron)]
