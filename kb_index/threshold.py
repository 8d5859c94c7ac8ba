"""The answer threshold in force: ``ANSWER_THRESHOLD`` when it is set explicitly, else the
threshold the published index calibrated on its own validation split (it moves with the model,
the backend and the KB, so a fixed number would not), else a fallback for a KB without one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FALLBACK = 0.6  # a KB that exposes no calibrated threshold (e.g. a stand-in searcher)


@dataclass(frozen=True, slots=True)
class InForce:
    value: float
    source: str  # "ANSWER_THRESHOLD", "index v3 calibration" or "fallback"

    def as_dict(self) -> dict[str, Any]:
        return {"answer_threshold": round(self.value, 4), "threshold_source": self.source}


def threshold_in_force(explicit: float | None, kb: object) -> InForce:
    """``explicit`` (the setting) wins; else ``kb.threshold`` (read each time: a reload or a refit
    may have moved it); else FALLBACK."""
    if explicit is not None:
        return InForce(float(explicit), "ANSWER_THRESHOLD")
    calibrated = getattr(kb, "threshold", None)
    if isinstance(calibrated, int | float):
        version = getattr(kb, "version", None)
        return InForce(
            float(calibrated), f"index v{version} calibration" if version is not None else "index calibration"
        )
    return InForce(FALLBACK, "fallback")


def kb_status(kb: object, explicit: float | None) -> dict[str, Any]:
    """What /healthz and the CLI show about the KB: version, model, backend, threshold in force."""
    if kb is None:
        return {"loaded": False, **threshold_in_force(explicit, None).as_dict()}
    status = getattr(kb, "status", None)
    base: dict[str, Any] = status() if callable(status) else {}
    return {"loaded": True, **base, **threshold_in_force(explicit, kb).as_dict()}
