"""Model files: round trip, and refusal of pickles, truncated, tampered and foreign files."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_biased_frame
from safetensors.torch import save

from froc_cli.core import DataSpec, ModelFileError
from froc_cli.data import fit_encoder
from froc_cli.models import FORMAT_NAME, ModelArtifact, build_model, load_model, save_model
from froc_cli.workflows import predict_table

FEATURES = ("age", "income", "education", "region")


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_biased_frame(120, seed=4)


@pytest.fixture
def saved(tmp_path: Path, frame: pd.DataFrame) -> Path:
    encoder = fit_encoder(frame, FEATURES, immutable=("age",))
    model = build_model("mlp:8", encoder.n_features, seed=7)
    return save_model(
        tmp_path / "model.froc",
        model,
        encoder,
        model_spec="mlp:8",
        data_spec=DataSpec(protected="gender", label="approved", immutable=("age",)),
        label_column="approved",
        positive_value="1",
        protected_column="gender",
        protected_values=("female",),
        info={"objective": {"lambda_f": 0.5, "lambda_r": 0.25, "attack": "pgd"}, "seed": 7},
    )


def _header(data: bytes) -> tuple[int, dict[str, object]]:
    (length,) = struct.unpack("<Q", data[:8])
    return length, json.loads(data[8 : 8 + length])


def _rewrite_header(data: bytes, header: dict[str, object]) -> bytes:
    length, _ = _header(data)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data[8 + length :]


def test_round_trip_gives_identical_predictions(saved: Path, frame: pd.DataFrame) -> None:
    encoder = fit_encoder(frame, FEATURES, immutable=("age",))
    reference = build_model("mlp:8", encoder.n_features, seed=7)
    x = torch.as_tensor(encoder.encode(frame))
    with torch.no_grad():
        expected = torch.sigmoid(reference(x)).numpy()
    artifact = load_model(saved)
    assert isinstance(artifact, ModelArtifact)
    got = predict_table(frame, artifact, source="frame")
    assert np.array_equal(got.frame["froc_proba"].to_numpy(), expected.astype(np.float64))
    assert np.array_equal(got.frame["froc_decision"].to_numpy(), (expected > 0.5).astype(int))
    for a, b in zip(
        artifact.model.state_dict().values(), reference.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert artifact.encoder == encoder
    assert artifact.label_column == "approved" and artifact.positive_value == "1"
    assert artifact.protected_column == "gender" and artifact.protected_values == ("female",)
    assert artifact.data_spec.immutable == ("age",)
    assert artifact.info["objective"]["lambda_r"] == 0.25
    # a second save of the loaded model is byte-identical (deterministic files)
    again = save_model(
        saved.with_name("again.froc"),
        artifact.model,
        artifact.encoder,
        model_spec=artifact.model_spec,
        data_spec=artifact.data_spec,
        label_column=artifact.label_column,
        positive_value=artifact.positive_value,
        protected_column=artifact.protected_column,
        protected_values=artifact.protected_values,
        info={"objective": {"lambda_f": 0.5, "lambda_r": 0.25, "attack": "pgd"}, "seed": 7},
    )
    assert again.read_bytes() == saved.read_bytes()


def test_file_is_plain_safetensors_with_froc_metadata(saved: Path) -> None:
    _, header = _header(saved.read_bytes())
    metadata = header["__metadata__"]
    assert isinstance(metadata, dict)
    assert metadata["format"] == FORMAT_NAME and metadata["format_version"] == "1"
    description = json.loads(metadata["froc"])
    assert description["model"]["spec"] == "mlp:8"
    assert description["encoder"]["immutable"] == ["age"]
    assert metadata["weights_sha256"] and metadata["froc_sha256"]
    # the reference reader accepts it and sees the same tensors
    from safetensors.torch import load

    tensors = load(saved.read_bytes())
    assert sorted(tensors) == [
        "layers.0.bias",
        "layers.0.weight",
        "layers.2.bias",
        "layers.2.weight",
    ]
    assert hashlib.sha256(metadata["froc"].encode()).hexdigest() == metadata["froc_sha256"]


class _Payload:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickle_payload_is_refused_without_running_it(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.froc"
    path.write_bytes(pickle.dumps(_Payload(marker), protocol=protocol))
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(path)
    assert not marker.exists()


def test_torch_save_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.froc"
    torch.save(build_model("mlp:8", 11, seed=0).state_dict(), path)
    with pytest.raises(ModelFileError, match=r"pickle or torch\.save"):
        load_model(path)


@pytest.mark.parametrize("keep", [0, 5, 8, 40, -1])
def test_truncated_file_is_refused(saved: Path, keep: int) -> None:
    data = saved.read_bytes()
    cut = data[:keep] if keep >= 0 else data[: len(data) - 16]
    saved.write_bytes(cut)
    with pytest.raises(ModelFileError):
        load_model(saved)


def test_tampered_weights_are_refused(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    data[-3] ^= 0x40  # a bit of the last tensor's bytes
    saved.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="weights fail their checksum"):
        load_model(saved)


def test_tampered_description_is_refused(saved: Path) -> None:
    data = saved.read_bytes()
    _, header = _header(data)
    metadata = dict(header["__metadata__"])  # type: ignore[call-overload]
    metadata["froc"] = metadata["froc"].replace('"lambda_r": 0.25', '"lambda_r": 0.0')
    header["__metadata__"] = metadata
    saved.write_bytes(_rewrite_header(data, header))
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(saved)


def test_other_format_version_is_refused(saved: Path) -> None:
    data = saved.read_bytes()
    _, header = _header(data)
    header["__metadata__"] = {**header["__metadata__"], "format_version": "99"}  # type: ignore[dict-item]
    saved.write_bytes(_rewrite_header(data, header))
    with pytest.raises(ModelFileError, match="version '99'"):
        load_model(saved)


def test_foreign_safetensors_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    path.write_bytes(save({"w": torch.zeros(2)}))
    with pytest.raises(ModelFileError, match="not a froc model"):
        load_model(path)


def test_shapes_must_match_the_spec_even_with_valid_checksums(saved: Path) -> None:
    """A consistent-looking file whose tensors do not fit its model spec."""
    data = saved.read_bytes()
    _, header = _header(data)
    metadata = dict(header["__metadata__"])  # type: ignore[call-overload]
    description = json.loads(metadata["froc"])
    description["model"]["spec"] = "mlp:9"
    text = json.dumps(description, sort_keys=True)
    metadata["froc"] = text
    metadata["froc_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    tensors = load_model_tensors(saved)
    saved.write_bytes(save(tensors, metadata=metadata))
    with pytest.raises(ModelFileError, match="do not match model 'mlp:9'"):
        load_model(saved)


def load_model_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    return load(path.read_bytes())


def test_missing_and_directory_paths(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "absent.froc")
    with pytest.raises(ModelFileError, match="is a directory"):
        load_model(tmp_path)


def test_garbage_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.froc"
    path.write_bytes(struct.pack("<Q", 5) + b"{oops" + b"\x00" * 10)
    with pytest.raises(ModelFileError, match="unreadable header"):
        load_model(path)
