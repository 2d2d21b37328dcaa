"""The transfer attack: white-box examples of a surrogate replayed through queries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_biased_frame

from froc_cli.attacks import FeatureSpace, TransferAttack, make_attack
from froc_cli.core import ThreatModel
from froc_cli.data import fit_encoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _case() -> tuple[FeatureSpace, torch.Tensor, torch.Tensor, torch.nn.Module]:
    frame = make_biased_frame(200, seed=6)
    encoder = fit_encoder(frame, ("age", "income", "education", "region"))
    x = torch.as_tensor(encoder.encode(frame))
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 16), torch.nn.ReLU(),
                              torch.nn.Linear(16, 1))  # fmt: skip

    class Logit(torch.nn.Module):
        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = net(inputs)[:, 0]
            return out

    y = torch.as_tensor(frame["approved"].to_numpy(np.float32))
    return FeatureSpace.from_encoder(encoder), x, y, Logit()


def test_the_model_as_its_own_surrogate_is_the_white_box_attack() -> None:
    space, x, y, model = _case()
    threat = ThreatModel(eps=0.1, attack_space="valid", cat_budget=1)
    pgd = make_attack("pgd", model, space, threat)
    counts = torch.zeros(len(x), dtype=torch.long)

    def query(rows: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        counts.index_add_(0, rows, torch.ones_like(rows))
        with torch.no_grad():
            margin = model(candidates).double()
        return margin > 0, margin

    transfer = TransferAttack(query, [pgd])
    out = transfer(x, y)
    with torch.no_grad():
        clean_wrong = (model(x) > 0) != y.bool()
        pgd_wrong = (model(pgd(x, y)) > 0) != y.bool()
        out_wrong = (model(out) > 0) != y.bool()
    assert torch.equal(transfer.broken, clean_wrong | pgd_wrong)
    assert torch.equal(out_wrong, transfer.broken)
    assert torch.equal(counts, transfer.queries_used)
    # Rows wrong from the start take one query; the rest one per crafted example.
    assert torch.equal(transfer.queries_used, torch.where(clean_wrong, 1, 2))


def test_keeps_the_highest_loss_example_of_unbroken_rows() -> None:
    x = torch.tensor([[0.5], [0.5]])
    y = torch.tensor([1.0, 0.0])

    def query(rows: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        margin = (candidates[:, 0] - 0.2).double()  # row 0 positive unless below 0.2
        margin = torch.where(rows == 1, -margin, margin)  # row 1: the other way round
        return margin > 0, margin

    closer = TransferAttack(query, [lambda a, b: a - 0.1, lambda a, b: a - 0.05])
    out = closer(x, y)
    assert closer.broken.tolist() == [False, False]
    torch.testing.assert_close(out[:, 0], torch.tensor([0.4, 0.4]))  # both losses rise
    assert closer.queries_used.tolist() == [3, 3]
