"""Tests of froc_cli.models._nets: model specs, shapes, parameter counts and seeded initialisation.

Closed forms: a network with hidden widths (h_1, ..., h_k) on d inputs has
sum_j (w_{j-1} + 1) * w_j parameters with w_0 = d and w_{k+1} = 1; every Linear layer is drawn
uniformly in +-1/sqrt(fan_in), weight then bias, layer by layer, from one generator seeded with
``seed`` (so the draws can be replayed by hand and do not depend on torch's global RNG).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from froc_cli.core import InputError
from froc_cli.models import TabularNet, build_model, parse_model_spec


def _n_params(d: int, hidden: tuple[int, ...]) -> int:
    widths = [d, *hidden, 1]
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in itertools.pairwise(widths))


# --------------------------------------------------------------------------------------------
# specs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "hidden"),
    [
        ("lr", ()),
        ("Lr", ()),
        ("mlp:64", (64,)),
        ("MLP:64", (64,)),
        ("mlp:32x16", (32, 16)),
        ("mlp:32X16", (32, 16)),
        ("  mlp:8x8x8\n", (8, 8, 8)),
        ("mlp:007", (7,)),
    ],
)
def test_spec_parsing(spec: str, hidden: tuple[int, ...]) -> None:
    assert parse_model_spec(spec) == hidden


@pytest.mark.parametrize(
    "spec",
    ["mlp:64x", "mlp:x", "mlp:64x0", "mlp: 64", "mlp:64 x16", "mlp:+4", "mlp:1e2", "logistic"],
)
def test_bad_spec_is_an_input_error_naming_the_value(spec: str) -> None:
    with pytest.raises(InputError) as excinfo:
        parse_model_spec(spec)
    assert str(excinfo.value) == (
        f"model {spec!r}: expected lr, mlp:H or mlp:HxH... (e.g. mlp:128x128)"
    )


def test_superscript_digit_spec_is_an_input_error() -> None:
    with pytest.raises(InputError):
        parse_model_spec("mlp:\u00b2")


def test_bad_spec_fails_before_building() -> None:
    with pytest.raises(InputError, match="'mlp:0'"):
        build_model("mlp:0", 3, seed=0)


# --------------------------------------------------------------------------------------------
# architecture
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "d", "expected"),
    [
        ("lr", 7, 8),  # 7 weights + 1 bias
        ("mlp:64", 10, (10 + 1) * 64 + (64 + 1)),
        ("mlp:32x16", 5, (5 + 1) * 32 + (32 + 1) * 16 + (16 + 1)),
        ("mlp:1x1x1", 1, 2 + 2 + 2 + 2),
    ],
)
def test_parameter_counts_match_the_closed_form(spec: str, d: int, expected: int) -> None:
    model = build_model(spec, d, seed=0)
    count = sum(p.numel() for p in model.parameters())
    assert count == expected == _n_params(d, parse_model_spec(spec))
    assert all(p.requires_grad and p.dtype == torch.float32 for p in model.parameters())


def test_layer_structure_and_output_shape() -> None:
    model = build_model("mlp:6x4", 3, seed=0)
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [(6, 3), (6,), (4, 6), (4,), (1, 4), (1,)]
    assert (model.n_features, model.hidden) == (3, (6, 4))
    assert model(torch.zeros(5, 3)).shape == (5,)
    assert model(torch.zeros(1, 3)).shape == (1,)
    assert model(torch.zeros(0, 3)).shape == (0,)


def test_lr_is_an_affine_logit() -> None:
    model = build_model("lr", 3, seed=1)
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
        model.layers[0].bias.fill_(0.25)
        out = model(torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [2.0, 0.5, -4.0]]))
    assert out.tolist() == [-0.25, 0.25, -0.75]  # 2 - 1 - 2 + 0.25


# --------------------------------------------------------------------------------------------
# seeded initialisation
# --------------------------------------------------------------------------------------------


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    first = build_model("mlp:16x8", 6, seed=11)
    again = build_model("mlp:16x8", 6, seed=11)
    other = build_model("mlp:16x8", 6, seed=12)
    for p, q, r in zip(first.parameters(), again.parameters(), other.parameters(), strict=True):
        assert torch.equal(p, q)
        assert not torch.equal(p, r)


def test_init_replays_from_an_explicit_generator_within_the_bounds() -> None:
    d, seed = 9, 5
    model = build_model("mlp:4x3", d, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    linears = [layer for layer in model.layers if isinstance(layer, nn.Linear)]
    for layer in linears:
        bound = 1.0 / math.sqrt(layer.in_features)
        expected_w = torch.empty_like(layer.weight).uniform_(-bound, bound, generator=generator)
        expected_b = torch.empty_like(layer.bias).uniform_(-bound, bound, generator=generator)
        assert torch.equal(layer.weight, expected_w)
        assert torch.equal(layer.bias, expected_b)
        assert float(layer.weight.detach().abs().max()) <= bound
        assert float(layer.bias.detach().abs().max()) <= bound
    assert [layer.in_features for layer in linears] == [9, 4, 3]


def test_init_does_not_depend_on_the_global_rng() -> None:
    torch.manual_seed(123)
    first = build_model("mlp:32x16", 8, seed=0)
    torch.manual_seed(999)  # a different global state gives the same model
    second = build_model("mlp:32x16", 8, seed=0)
    for p, q in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("spec", ["lr", "mlp:32x16"])
def test_init_does_not_change_the_global_rng(spec: str) -> None:
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    build_model(spec, 8, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_input_gradient_equals_autograd() -> None:
    """TabularNet.input_gradient (by hand) equals autograd's input gradient."""
    model = build_model("mlp:8x5", 4, seed=3)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.uniform(-1, 2, size=(20, 4)), dtype=torch.float32)
    weights = torch.tensor(rng.normal(size=20), dtype=torch.float32)
    x_req = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad((weights * model(x_req)).sum(), x_req)
    got = model.input_gradient(x, weights)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)
    assert all(p.grad is None for p in model.parameters())
    # for lr the gradient is w scaled per row
    lr = build_model("lr", 4, seed=3)
    w = lr.layers[0].weight.detach()[0]
    torch.testing.assert_close(lr.input_gradient(x, weights), weights[:, None] * w[None, :])


def test_build_model_is_a_tabular_net_on_the_device() -> None:
    model = build_model("lr", 2, seed=0, device="cpu")
    assert type(model) is TabularNet
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert model.training  # built in train mode; the training loop switches modes
