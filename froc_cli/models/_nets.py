"""Target and surrogate models: logistic regression and ReLU MLPs that output one logit."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from froc_cli.core._errors import InputError

__all__ = ["TabularNet", "build_model", "parse_model_spec"]


def parse_model_spec(spec: str) -> tuple[int, ...]:
    """Hidden-layer widths of a model spec: ``lr`` -> (), ``mlp:128`` -> (128,),
    ``mlp:128x128`` -> (128, 128)."""
    text = spec.strip().lower()
    if text == "lr":
        return ()
    if text.startswith("mlp:"):
        parts = text[4:].split("x")
        # isascii: str.isdigit accepts digits such as '²' that int() refuses.
        if parts and all(p.isascii() and p.isdigit() and int(p) > 0 for p in parts):
            return tuple(int(p) for p in parts)
    raise InputError(f"model {spec!r}: expected lr, mlp:H or mlp:HxH... (e.g. mlp:128x128)")


class TabularNet(nn.Module):
    """A stack of Linear+ReLU layers ending in one logit per row (shape ``(n,)``)."""

    def __init__(self, n_features: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        widths = [n_features, *hidden]
        layers: list[nn.Module] = []
        # nn.Linear draws default weights from torch's global generator; build_model then
        # overwrites them from its own seed. Fork the generator so that building a model
        # leaves the caller's random stream untouched.
        with torch.random.fork_rng(devices=[]):
            for fan_in, fan_out in itertools.pairwise(widths):
                layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
            layers.append(nn.Linear(widths[-1], 1))
        self.layers = nn.Sequential(*layers)
        self.n_features = n_features
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the favourable class."""
        out: torch.Tensor = self.layers(x).squeeze(-1)
        return out

    @torch.no_grad()
    def input_gradient(self, x: torch.Tensor, logit_grad: torch.Tensor) -> torch.Tensor:
        """Gradient of ``sum_i logit_grad_i * logit(x_i)`` with respect to ``x``, by hand.

        The same kernels as autograd's backward pass (``addmm``; ReLU's ``threshold_backward``;
        ``mm`` with each weight), so the same numbers, without building a graph or computing
        parameter gradients: about 40% less time per attack step, and attack steps are most of
        adversarial training's time.
        """
        linears = [module for module in self.layers if isinstance(module, nn.Linear)]
        pre_activations: list[torch.Tensor] = []
        hidden = x
        for linear in linears[:-1]:
            if pre_activations:  # the last hidden layer's output itself is not needed
                hidden = torch.relu(pre_activations[-1])
            pre_activations.append(torch.addmm(linear.bias, hidden, linear.weight.t()))
        grad = logit_grad[:, None] * linears[-1].weight
        for linear, z in zip(reversed(linears[:-1]), reversed(pre_activations), strict=True):
            grad = torch.ops.aten.threshold_backward(grad, z, 0.0) @ linear.weight
        return grad


def build_model(
    spec: str, n_features: int, *, seed: int, device: torch.device | str = "cpu"
) -> TabularNet:
    """Build ``spec`` with parameters drawn from its own generator seeded with ``seed``.

    Uses PyTorch's default Linear initialisation (uniform in +-1/sqrt(fan_in)) but from an
    explicit generator, so the global RNG is neither read nor changed.
    """
    model = TabularNet(n_features, parse_model_spec(spec))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.in_features)
                module.weight.uniform_(-bound, bound, generator=generator)
                if module.bias is not None:
                    module.bias.uniform_(-bound, bound, generator=generator)
    return model.to(device)
