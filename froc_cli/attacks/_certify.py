"""Certified robustness of froc's own models (logistic regression and ReLU MLPs).

A row is *certified* when the model classifies it correctly and provably keeps that prediction
everywhere in the threat model: a sound lower bound of ``(2y - 1) * logit`` over the whole
perturbation set keeps the correct sign (froc predicts ``logit > 0``, so a ``y = 1`` row needs
``lower > 0`` and a ``y = 0`` row ``upper <= 0``). No attack can break a certified row; an
uncertified row may or may not be breakable.

Bounds (``method``)
    ``"ibp"``: interval bound propagation (Gowal et al. 2018), one interval per neuron.
    ``"crown-ibp"``: CROWN's backward linear relaxation (Zhang et al. 2018) for the logit, over
    IBP's hidden-layer intervals (CROWN-IBP, Zhang et al. 2020). An unstable ReLU
    (``l < 0 < u``) lies below the line ``u (z - l) / (u - l)`` and above ``z`` when
    ``u >= -l``, above ``0`` otherwise (the adaptive lower slope).
    ``"crown"``: full CROWN: every hidden layer's pre-activation bounds come from CROWN itself
    (one backward pass per layer, intersected with that layer's IBP interval), and the logit
    bound is the best of the three, so on every row ``"crown"`` is at least as tight as
    ``"crown-ibp"``, and that as IBP. (Pure CROWN, without the intersections, is looser than
    IBP on some rows: 4,798 of 12,637 on an Adult mlp:128x128 at eps 0.1.)
    The first layer's interval is exact (a linear function over the set), so for one hidden
    layer (``mlp:H``) ``"crown"`` and ``"crown-ibp"`` are the same, and for ``lr`` all three
    are the exact min and max of the logit.

Threat models (``attack_space``)
    ``"continuous"``: the L-inf eps-ball intersected with the bounds, immutable columns fixed
    (:meth:`FeatureSpace.box`, the set PGD and FGSM search); one-hot columns move continuously
    like numerics.
    ``"valid"``: the set :class:`ValidRecordAttack` searches. Mutable numerics lie in the same
    box (their value grid only shrinks it; grid columns are widened by 1e-6, the float32
    rounding of the attack's snapping). At most ``cat_budget`` mutable categorical blocks
    switch to another category, the others keep their value. When the options per row (every
    combination of at most ``cat_budget`` blocks and a category of each) number at most
    ``max_options`` they are enumerated: each option is a box of its own, bounded separately,
    and a row is certified only when every option is (Adult: 96 options per row with
    ``cat_budget=1``, 3,554 with 2). Past ``max_options`` (Adult with ``cat_budget >= 3``:
    68,488) the switches are relaxed instead: every linear bound (CROWN's, and IBP's first
    layer, per neuron) is minimised exactly over the switch set -- per block the best switch,
    then the ``cat_budget`` best blocks -- while the ReLU relaxations are shared by all
    switches. That is sound but far looser than enumeration (Adult mlp:128, eps 0.05,
    ``cat_budget=1``: 286 rows certified instead of 884).

Arithmetic is float64 (the bounds are sound for the real-valued network up to float64
rounding, ~1e-15 relative); the clean prediction that must be correct is the model's own
(float32) forward pass. Everything is batched over rows (and switch options) in chunks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from froc_cli.core._errors import InputError

from ._base import Attack
from ._pgd import PGD
from ._space import FeatureSpace
from ._valid import ValidRecordAttack

__all__ = ["CertifyMethod", "certify", "logit_bounds", "threat_bounds"]

CertifyMethod = Literal["ibp", "crown", "crown-ibp"]
_METHODS = ("ibp", "crown-ibp", "crown")
_DTYPE = torch.float64
# Slack on grid columns in the valid space: ValidRecordAttack's snapping may land 1e-7 past
# eps (its own slack) or past a bound (float32 error of x + k * grid).
_GRID_SLACK = 1e-6
# Largest number of float64 entries of one chunk's widest tensor (the CROWN coefficients):
# 2**23 is 64 MiB; a chunk holds a few such tensors at a time.
_MAX_ELEMENTS = 2**23

_Layers = list[tuple[torch.Tensor, torch.Tensor]]


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------


def _linear_layers(model: nn.Module, device: torch.device) -> _Layers:
    """(weight, bias) of each Linear of a Linear-ReLU-...-Linear(., 1) stack, in float64."""
    stack = getattr(model, "layers", model)
    modules = list(stack.children()) if isinstance(stack, nn.Sequential) else []
    linears = [m for m in modules[0::2] if isinstance(m, nn.Linear)]
    shape_ok = (
        len(modules) % 2 == 1
        and len(linears) == len(modules[0::2])
        and all(isinstance(m, nn.ReLU) for m in modules[1::2])
    )
    if not shape_ok or linears[-1].out_features != 1:
        raise InputError(
            "certification needs a Linear-ReLU-...-Linear(., 1) network (froc's lr or mlp models)"
        )
    layers: _Layers = []
    for linear in linears:
        weight = linear.weight.detach().to(device=device, dtype=_DTYPE)
        bias = (
            linear.bias.detach().to(device=device, dtype=_DTYPE)
            if linear.bias is not None
            else torch.zeros(linear.out_features, device=device, dtype=_DTYPE)
        )
        layers.append((weight, bias))
    return layers


def _relax(lower: torch.Tensor, upper: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """ReLU relaxation per neuron: ``a_low z <= relu(z) <= a_up z + b_up`` on ``[lower, upper]``."""
    active = lower >= 0
    unstable = (lower < 0) & (upper > 0)
    width = torch.where(unstable, upper - lower, torch.ones_like(upper))
    a_up = torch.where(unstable, upper / width, active.to(upper.dtype))
    b_up = torch.where(unstable, -a_up * lower, torch.zeros_like(upper))
    a_low = torch.where(unstable, (upper >= -lower).to(upper.dtype), active.to(upper.dtype))
    return a_low, a_up, b_up


def _ibp_layer(
    lower: torch.Tensor, upper: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interval of ``weight @ relu(z) + bias`` for ``z`` in ``[lower, upper]``."""
    lo, hi = lower.clamp(min=0), upper.clamp(min=0)
    mid = torch.addmm(bias, (lo + hi) / 2, weight.t())
    rad = ((hi - lo) / 2) @ weight.abs().t()
    return mid - rad, mid + rad


# --------------------------------------------------------------------------------------------
# perturbation sets, seen through the first linear layer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Switches:
    """At most ``budget`` of the mutable categorical blocks switch to another category."""

    weight: torch.Tensor  # (h1, c): first-layer weights of the mutable categorical columns
    x: torch.Tensor  # (N, c): the rows' values of those columns
    blocks: tuple[torch.Tensor, ...]  # per block, its columns (indices into c)
    budget: int

    def select(self, index: torch.Tensor) -> _Switches:
        return _Switches(self.weight, self.x[index], self.blocks, self.budget)

    def _best(self, gains: torch.Tensor, largest: bool) -> torch.Tensor:
        """Sum over the ``budget`` best blocks of per-block gains (last dimension)."""
        k = min(self.budget, gains.shape[-1])
        if k >= gains.shape[-1]:
            return gains.sum(-1)
        return gains.topk(k, dim=-1, largest=largest).values.sum(-1)

    def min_change(self, coef: torch.Tensor) -> torch.Tensor:
        """Exact min over the switches of the change of ``coef @ z1``; coef ``(N, m, h1)``."""
        g = coef @ self.weight  # (N, m, c): coefficient of each categorical column
        gains = []
        for cols in self.blocks:
            block = g.index_select(-1, cols)
            current = (block * self.x[:, None, cols]).sum(-1)
            # Switching to the current category changes nothing: the gain is clipped at 0.
            gains.append((block.amin(-1) - current).clamp(max=0))
        return self._best(torch.stack(gains, -1), largest=False)

    def first_layer_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact per-neuron min and max change of ``z1`` over the switches, each ``(N, h1)``."""
        down, up = [], []
        for cols in self.blocks:
            w = self.weight.index_select(1, cols)  # (h1, |B|)
            current = self.x[:, cols] @ w.t()  # (N, h1)
            down.append((w.amin(1) - current).clamp(max=0))
            up.append((w.amax(1) - current).clamp(min=0))
        return self._best(torch.stack(down, -1), False), self._best(torch.stack(up, -1), True)


@dataclass(frozen=True)
class _InputSet:
    """``z1 = centre + generators @ d`` with ``|d| <= radius`` (plus switches, if any)."""

    centre: torch.Tensor  # (N, h1): the first pre-activation at the centre of the set
    generators: torch.Tensor  # (h1, s): first-layer weights of the columns that move
    radius: torch.Tensor  # (N, s): their half-widths
    switches: _Switches | None = None

    def select(self, index: torch.Tensor) -> _InputSet:
        switches = None if self.switches is None else self.switches.select(index)
        return _InputSet(self.centre[index], self.generators, self.radius[index], switches)

    def first_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact per-neuron interval of ``z1`` over the set."""
        rad = self.radius @ self.generators.abs().t()
        lower, upper = self.centre - rad, self.centre + rad
        if self.switches is not None:
            down, up = self.switches.first_layer_range()
            lower, upper = lower + down, upper + up
        return lower, upper

    def minimise(self, coef: torch.Tensor) -> torch.Tensor:
        """Exact min over the set of ``coef @ z1``; coef ``(N, m, h1)`` -> ``(N, m)``."""
        value = (coef * self.centre[:, None, :]).sum(-1)
        value = value - ((coef @ self.generators).abs() * self.radius[:, None, :]).sum(-1)
        if self.switches is not None:
            value = value + self.switches.min_change(coef)
        return value


def _box_set(layers: _Layers, low: torch.Tensor, high: torch.Tensor) -> _InputSet:
    weight, bias = layers[0]
    low, high = low.to(_DTYPE), high.to(_DTYPE)
    moving = (high > low).any(0).nonzero().squeeze(1)
    centre = torch.addmm(bias, (low + high) / 2, weight.t())
    radius = ((high - low) / 2).index_select(1, moving)
    return _InputSet(centre, weight.index_select(1, moving), radius)


# --------------------------------------------------------------------------------------------
# bound propagation
# --------------------------------------------------------------------------------------------


def _back_substitute(
    layers: _Layers,
    bounds: list[tuple[torch.Tensor, torch.Tensor]],
    inputs: _InputSet,
    coef: torch.Tensor,
    const: torch.Tensor,
    below: int,
) -> torch.Tensor:
    """CROWN: lower bound of ``coef @ relu(z_below) + const`` over the input set.

    ``coef`` ``(N or 1, m, h_below)``, ``const`` ``(N or 1, m)``; ``bounds[j]`` is the interval
    of the hidden pre-activation ``z_{j+1}`` (1-based layers, ``below >= 1``).
    """
    for j in range(below, 0, -1):
        a_low, a_up, b_up = _relax(*bounds[j - 1])
        positive, negative = coef.clamp(min=0), coef.clamp(max=0)
        coef = positive * a_low[:, None, :] + negative * a_up[:, None, :]
        const = const + (negative * b_up[:, None, :]).sum(-1)
        if j == 1:
            break
        weight, bias = layers[j - 1]
        const = const + coef @ bias
        coef = coef @ weight
    return const + inputs.minimise(coef)


def _signed_lower(
    layers: _Layers, inputs: _InputSet, signs: torch.Tensor, method: CertifyMethod
) -> torch.Tensor:
    """Lower bounds of ``signs * logit`` over each set; signs ``(N, m)`` of +-1 -> ``(N, m)``.

    ``"crown"`` returns the best of IBP, CROWN over IBP's hidden intervals (``"crown-ibp"``)
    and CROWN over its own, so on every set it is at least as tight as the other two."""
    lower, upper = inputs.first_layer()
    if len(layers) == 1:  # lr: the interval of a linear function over the set is exact
        return torch.where(signs > 0, signs * lower, signs * upper)
    ibp_bounds = [(lower, upper)]  # hidden intervals by IBP alone
    bounds = [(lower, upper)]  # by CROWN and IBP ("crown"), else IBP's
    for k in range(2, len(layers)):  # hidden pre-activations z_2 ... z_{L-1}
        weight, bias = layers[k - 1]
        if method == "crown":
            lower, upper = _ibp_layer(*bounds[-1], weight, bias)
            coef = torch.cat([weight, -weight])[None]  # (1, 2h, h_{k-1}): z_k and -z_k
            const = torch.cat([bias, -bias])[None]
            crown = _back_substitute(layers, bounds, inputs, coef, const, k - 1)
            h = bias.shape[0]
            bounds.append((torch.maximum(lower, crown[:, :h]), torch.minimum(upper, -crown[:, h:])))
        ibp_bounds.append(_ibp_layer(*ibp_bounds[-1], weight, bias))
    if method != "crown":
        bounds = ibp_bounds
    weight, bias = layers[-1]
    lower, upper = _ibp_layer(*bounds[-1], weight, bias)
    best = torch.where(signs > 0, signs * lower, signs * upper)
    if method == "ibp":
        return best
    coef = signs[:, :, None] * weight[None]  # (N, m, h_{L-1})
    below = len(layers) - 1
    best = torch.maximum(best, _back_substitute(layers, bounds, inputs, coef, signs * bias, below))
    if method == "crown" and len(layers) > 2:
        crown_ibp = _back_substitute(layers, ibp_bounds, inputs, coef, signs * bias, below)
        best = torch.maximum(best, crown_ibp)
    return best


def _refined_lower(
    layers: _Layers,
    inputs: _InputSet,
    signs: torch.Tensor,
    method: CertifyMethod,
    strict: torch.Tensor | None,
) -> torch.Tensor:
    """:func:`_signed_lower`, as a cascade when ``strict`` is given (bool per set: the goal is
    ``lower > 0`` when True, ``lower >= 0`` when False; ``m == 1``): IBP first, then CROWN-IBP,
    then (``"crown"``) full CROWN, each only on the sets the previous ones leave short of the
    goal. Every stage is sound, so the decision is that of the best bound."""
    if method == "ibp" or strict is None:
        return _signed_lower(layers, inputs, signs, method)
    ladder: list[CertifyMethod] = ["ibp", "crown-ibp", "crown"]
    # One hidden layer or none: CROWN and CROWN-IBP are the same (exact first-layer bounds).
    ladder = ladder[: _METHODS.index(method) + 1] if len(layers) > 2 else ["ibp", method]
    lower = _signed_lower(layers, inputs, signs, ladder[0])
    for stage in ladder[1:]:
        met = torch.where(strict, lower[:, 0] > 0, lower[:, 0] >= 0)
        todo = (~met).nonzero().squeeze(1)
        if todo.numel() == 0:
            break
        refined = _signed_lower(layers, inputs.select(todo), signs[todo], stage)
        lower[todo] = torch.maximum(lower[todo], refined)
    return lower


# --------------------------------------------------------------------------------------------
# threat models
# --------------------------------------------------------------------------------------------


def _check(method: str, attack_space: str, cat_budget: int, chunk: int) -> None:
    if method not in _METHODS:
        raise InputError(f"certification method {method!r}: expected one of {', '.join(_METHODS)}")
    if attack_space not in ("continuous", "valid"):
        raise InputError(f"attack space {attack_space!r}: expected continuous or valid")
    if cat_budget < 0:
        raise InputError(f"cat_budget {cat_budget}: expected 0 or more")
    if chunk < 1:
        raise InputError(f"chunk {chunk}: expected 1 or more")


def _row_cost(layers: _Layers, method: CertifyMethod, width: int) -> int:
    """Entries of the widest per-set tensor of the bound computation (``width``: the columns
    of the input set, moving plus categorical)."""
    widths = [layers[0][0].shape[1], *(w.shape[0] for w, _ in layers)]
    cost = max(widths) + width
    if method == "crown":
        for k in range(2, len(layers)):
            cost = max(cost, 2 * widths[k] * max(*widths[1:k], width))
    return max(cost, 1)


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


@dataclass(frozen=True)
class _ValidPlan:
    """The valid-record threat model of one feature space, in first-layer terms."""

    numeric_box: tuple[torch.Tensor, torch.Tensor]  # (N, d) box of the numerics, others at x
    categorical: torch.Tensor  # (c,) the mutable categorical columns
    blocks: tuple[torch.Tensor, ...]  # per mutable block, its columns (indices into c)
    options: torch.Tensor | None  # (K, c) categories picked by each option (None: relaxed)
    switched: torch.Tensor | None  # (K, n_blocks) blocks each option switches
    stages: tuple[slice, ...] = ()  # options by number of switches: 0, 1, ...


def _valid_plan(
    x: torch.Tensor, space: FeatureSpace, eps: float, cat_budget: int, max_options: int
) -> _ValidPlan:
    low, high = space.box(x, eps)
    numeric = space.numeric & space.mutable
    slack = torch.where(space.grid > 0, _GRID_SLACK, 0.0).to(x.dtype)
    low = torch.where(numeric, low - slack, x)
    high = torch.where(numeric, high + slack, x)
    categorical_mask = (space.blocks >= 0) & space.mutable & ~space.numeric
    categorical = categorical_mask.nonzero().squeeze(1)
    block_of = space.blocks[categorical]
    block_ids = sorted(set(block_of.tolist()))
    blocks = tuple((block_of == b).nonzero().squeeze(1) for b in block_ids)
    if cat_budget == 0 or not blocks:
        empty = torch.zeros(0, dtype=torch.long, device=x.device)
        return _ValidPlan((low, high), empty, (), None, None)
    sizes = [int(cols.numel()) for cols in blocks]
    budget = min(cat_budget, len(blocks))
    # Options with exactly r switches: the r-th elementary symmetric polynomial of the sizes.
    by_switches = [1] + [0] * budget
    for size in sizes:
        for r in range(budget, 0, -1):
            by_switches[r] += by_switches[r - 1] * size
    n_options = sum(by_switches)
    if n_options > max_options:
        return _ValidPlan((low, high), categorical, blocks, None, None)
    picks: list[list[int]] = []
    switched: list[list[int]] = []
    for r in range(budget + 1):
        for subset in itertools.combinations(range(len(blocks)), r):
            columns: list[list[int]] = [blocks[b].tolist() for b in subset]
            for choice in itertools.product(*columns):
                picks.append(list(choice))
                switched.append(list(subset))
    options = torch.zeros(len(picks), categorical.numel(), dtype=_DTYPE, device=x.device)
    mask = torch.zeros(len(picks), len(blocks), dtype=_DTYPE, device=x.device)
    for i, (pick, chosen) in enumerate(zip(picks, switched, strict=True)):
        options[i, pick] = 1.0
        mask[i, chosen] = 1.0
    ends = list(itertools.accumulate(by_switches))
    stages = tuple(slice(a, b) for a, b in zip([0, *ends[:-1]], ends, strict=True))
    return _ValidPlan((low, high), categorical, blocks, options, mask, stages)


def _valid_lower(
    layers: _Layers,
    x: torch.Tensor,
    plan: _ValidPlan,
    signs: torch.Tensor,
    method: CertifyMethod,
    cat_budget: int,
    chunk: int,
    strict: torch.Tensor | None,
) -> torch.Tensor:
    """Lower bound of ``signs * logit`` over the valid-record set of each row, ``(N, m)``."""
    if plan.options is not None:
        return _enumerated_lower(layers, x, plan, signs, method, chunk, strict)
    weight, bias = layers[0]
    low, high = plan.numeric_box
    moving = (high > low).any(0).nonzero().squeeze(1)
    generators = weight.index_select(1, moving)
    cat_weight = weight.index_select(1, plan.categorical)  # (h1, c)
    cost = _row_cost(layers, method, moving.numel() + plan.categorical.numel())
    rows = max(1, min(chunk, _MAX_ELEMENTS // cost))
    out = torch.empty(x.shape[0], signs.shape[1], dtype=_DTYPE, device=x.device)
    for part in _chunks(x.shape[0], rows):
        lo, hi = low[part].to(_DTYPE), high[part].to(_DTYPE)
        centre = torch.addmm(bias, (lo + hi) / 2, weight.t())
        radius = ((hi - lo) / 2).index_select(1, moving)
        switches = None
        if plan.blocks:
            x_cat = x[part].to(_DTYPE).index_select(1, plan.categorical)
            switches = _Switches(cat_weight, x_cat, plan.blocks, cat_budget)
        inputs = _InputSet(centre, generators, radius, switches)
        part_strict = None if strict is None else strict[part]
        out[part] = _refined_lower(layers, inputs, signs[part], method, part_strict)
    return out


def _logits_from_first(layers: _Layers, z1: torch.Tensor) -> torch.Tensor:
    """The logit given the first pre-activation ``z1`` ``(P, h1)`` -> ``(P,)``."""
    for weight, bias in layers[1:]:
        z1 = torch.addmm(bias, z1.clamp(min=0), weight.t())
    return z1[:, 0]


def _rectangles(
    rows: torch.Tensor, options: slice, boxes: int
) -> Iterator[tuple[torch.Tensor, slice]]:
    """(rows, options) blocks of at most ``boxes`` pairs covering ``rows x options``."""
    option_step = max(1, min(options.stop - options.start, boxes))
    row_step = max(1, boxes // option_step)
    for start in range(0, rows.numel(), row_step):
        for first in range(options.start, options.stop, option_step):
            yield (
                rows[start : start + row_step],
                slice(first, min(first + option_step, options.stop)),
            )


def _enumerated_lower(
    layers: _Layers,
    x: torch.Tensor,
    plan: _ValidPlan,
    signs: torch.Tensor,
    method: CertifyMethod,
    chunk: int,
    strict: torch.Tensor | None,
) -> torch.Tensor:
    """:func:`_valid_lower` over the enumerated switch options, each a box of its own.

    With ``strict`` (certification), options are first evaluated at the row's own numerics,
    fewest switches first: a row with a valid record on the wrong side cannot be certified, and
    gets ``-inf`` without bounds (most uncertified rows on Adult are broken by one switch).
    """
    assert plan.options is not None and plan.switched is not None
    switched = plan.switched
    weight, bias = layers[0]
    low, high = plan.numeric_box
    moving = (high > low).any(0).nonzero().squeeze(1)
    generators = weight.index_select(1, moving)
    cat_weight = weight.index_select(1, plan.categorical)  # (h1, c)
    option_weight = plan.options @ cat_weight.t()  # (K, h1): the options' new categories
    n_options = plan.options.shape[0]
    boxes = max(1, min(chunk, _MAX_ELEMENTS // _row_cost(layers, method, moving.numel())))
    per_row = (len(plan.blocks) + 2) * weight.shape[0]
    out = torch.full((x.shape[0], signs.shape[1]), torch.inf, dtype=_DTYPE, device=x.device)

    def centres(base: torch.Tensor, current: torch.Tensor, options: slice) -> torch.Tensor:
        # Each option moves z1 by its new categories' weights minus the current ones.
        shift = option_weight[options] - switched[options] @ current  # (r, k, h1)
        return (base[:, None, :] + shift).reshape(-1, base.shape[1])

    for part in _chunks(x.shape[0], max(1, _MAX_ELEMENTS // per_row)):
        x_part = x[part].to(_DTYPE)
        x_cat = x_part.index_select(1, plan.categorical)
        current = torch.stack([x_cat[:, c] @ cat_weight[:, c].t() for c in plan.blocks], 1)
        part_signs = signs[part]
        alive = torch.arange(x_part.shape[0], device=x.device)
        if strict is not None:
            at_x = torch.addmm(bias, x_part, weight.t())
            for stage in plan.stages:
                broken = torch.zeros(x_part.shape[0], dtype=torch.bool, device=x.device)
                for rows, options in _rectangles(alive, stage, boxes):
                    logits = _logits_from_first(layers, centres(at_x[rows], current[rows], options))
                    signed = logits.view(rows.numel(), -1) * part_signs[rows, :1]
                    wrong = torch.where(strict[part][rows, None], signed <= 0, signed < 0)
                    broken[rows] |= wrong.any(1)
                alive = alive[~broken[alive]]
            out_part = out[part]  # a view: writes land in ``out``
            out_part[:] = -torch.inf
            out_part[alive] = torch.inf
        lo, hi = low[part].to(_DTYPE), high[part].to(_DTYPE)
        centre = torch.addmm(bias, (lo + hi) / 2, weight.t())
        radius = ((hi - lo) / 2).index_select(1, moving)
        for rows, options in _rectangles(alive, slice(0, n_options), boxes):
            k = options.stop - options.start
            inputs = _InputSet(
                centres(centre[rows], current[rows], options),
                generators,
                radius[rows].repeat_interleave(k, 0),
            )
            option_signs = part_signs[rows].repeat_interleave(k, 0)
            option_strict = None if strict is None else strict[part][rows].repeat_interleave(k, 0)
            lower = _refined_lower(layers, inputs, option_signs, method, option_strict)
            lower = lower.view(rows.numel(), k, -1).amin(1)
            out_part = out[part]
            out_part[rows] = torch.minimum(out_part[rows], lower)
    return out


def _threat_lower(
    model: nn.Module,
    x: torch.Tensor,
    space: FeatureSpace,
    signs: torch.Tensor,
    *,
    eps: float,
    method: CertifyMethod,
    attack_space: str,
    cat_budget: int,
    chunk: int,
    max_options: int,
    strict: torch.Tensor | None = None,
) -> torch.Tensor:
    _check(method, attack_space, cat_budget, chunk)
    x = x.detach()
    layers = _linear_layers(model, x.device)
    if attack_space == "valid":
        plan = _valid_plan(x, space, eps, cat_budget, max_options)
        return _valid_lower(layers, x, plan, signs, method, cat_budget, chunk, strict)
    low, high = space.box(x, eps)
    return _box_lower(layers, low, high, signs, method, chunk, strict)


def _box_lower(
    layers: _Layers,
    low: torch.Tensor,
    high: torch.Tensor,
    signs: torch.Tensor,
    method: CertifyMethod,
    chunk: int,
    strict: torch.Tensor | None,
) -> torch.Tensor:
    rows = max(1, min(chunk, _MAX_ELEMENTS // _row_cost(layers, method, low.shape[1])))
    out = torch.empty(low.shape[0], signs.shape[1], dtype=_DTYPE, device=low.device)
    for part in _chunks(low.shape[0], rows):
        inputs = _box_set(layers, low[part], high[part])
        part_strict = None if strict is None else strict[part]
        out[part] = _refined_lower(layers, inputs, signs[part], method, part_strict)
    return out


def _both_signs(n: int, device: torch.device) -> torch.Tensor:
    return torch.tensor([[1.0, -1.0]], dtype=_DTYPE, device=device).expand(n, 2)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def logit_bounds(
    model: nn.Module,
    low: torch.Tensor,
    high: torch.Tensor,
    method: CertifyMethod = "crown",
    *,
    chunk: int = 8192,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sound ``(lower, upper)`` bounds (float64, shape ``(n,)``) of ``model``'s logit over each
    row's box ``[low, high]`` (shape ``(n, d)``)."""
    _check(method, "continuous", 0, chunk)
    layers = _linear_layers(model, low.device)
    signs = _both_signs(low.shape[0], low.device)
    lower = _box_lower(layers, low.detach(), high.detach(), signs, method, chunk, None)
    return lower[:, 0], -lower[:, 1]


@torch.no_grad()
def threat_bounds(
    model: nn.Module,
    x: torch.Tensor,
    space: FeatureSpace,
    *,
    eps: float,
    method: CertifyMethod = "crown",
    attack_space: Literal["continuous", "valid"] = "continuous",
    cat_budget: int = 1,
    chunk: int = 8192,
    max_options: int = 4096,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sound ``(lower, upper)`` bounds (float64, ``(n,)``) of the logit over each row's threat
    set (module docstring): the eps-box in the continuous space, the valid records in the valid
    space."""
    signs = _both_signs(x.shape[0], x.device)
    lower = _threat_lower(
        model,
        x,
        space,
        signs,
        eps=eps,
        method=method,
        attack_space=attack_space,
        cat_budget=cat_budget,
        chunk=chunk,
        max_options=max_options,
    )
    return lower[:, 0], -lower[:, 1]


@torch.no_grad()
def certify(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    space: FeatureSpace,
    *,
    eps: float,
    method: CertifyMethod = "crown",
    attack_space: Literal["continuous", "valid"] = "continuous",
    cat_budget: int = 1,
    chunk: int = 8192,
    max_options: int = 4096,
) -> torch.Tensor:
    """Per row (bool, ``(n,)``): correctly classified and provably so everywhere in the threat
    model (module docstring). ``y`` holds 0/1 labels; the model predicts ``logit > 0``.

    Only the bound on the correct side is computed (the lower bound for ``y = 1``, the upper
    for ``y = 0``), as a cascade: IBP, then CROWN-IBP, then full CROWN, each only on the rows
    the cheaper bounds leave uncertified. Rows with a counterexample are dropped before the
    costly stages: in the valid space, those a 10-step :class:`ValidRecordAttack` breaks, then
    those with an enumerated switch on the wrong side at their own numerics; in the continuous
    space, before full CROWN on a deep network, those a 10-step PGD breaks. Dropping them
    changes no decision: no sound bound certifies a breakable row.
    ``max_options`` caps the enumerated category switches per row in the valid space (Adult:
    96 options with ``cat_budget=1``, 3,554 with 2, 68,488 with 3, which is relaxed).
    """
    _check(method, attack_space, cat_budget, chunk)
    x = x.detach()
    positive = y.to(x.device).reshape(-1) > 0.5
    certified = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    if x.shape[0] == 0:
        return certified
    logits = torch.cat([model(x[part]).detach() for part in _chunks(x.shape[0], chunk)])
    todo = ((logits > 0) == positive).nonzero().squeeze(1)
    passes: list[CertifyMethod] = [method]
    deep = len(_linear_layers(model, x.device)) > 2
    if method == "crown" and attack_space == "continuous" and deep:
        passes = ["crown-ibp", "crown"]
    for i, stage in enumerate(passes):
        if i > 0 or attack_space == "valid":
            attack: Attack = (
                ValidRecordAttack(model, space, eps=eps, steps=10, cat_budget=cat_budget)
                if attack_space == "valid"
                else PGD(model, space, eps=eps, steps=10)
            )
            x_adv = attack(x[todo], positive[todo].to(x.dtype))
            todo = todo[(model(x_adv).detach() > 0) == positive[todo]]
        if todo.numel() == 0:
            break
        signs = torch.where(positive[todo], 1.0, -1.0).to(_DTYPE)[:, None]
        # y = 1: lower(logit) > 0; y = 0: lower(-logit) >= 0 (froc predicts logit > 0).
        lower = _threat_lower(
            model,
            x[todo],
            space,
            signs,
            eps=eps,
            method=stage,
            attack_space=attack_space,
            cat_budget=cat_budget,
            chunk=chunk,
            max_options=max_options,
            strict=positive[todo],
        )[:, 0]
        done = torch.where(positive[todo], lower > 0, lower >= 0)
        certified[todo] = done
        todo = todo[~done]
    return certified
