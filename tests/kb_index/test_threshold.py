"""The answer threshold in force: ANSWER_THRESHOLD if set, else the index's calibrated one."""

from __future__ import annotations

from pathlib import Path

from kb_index import KnowledgeBase, build_index
from kb_index.threshold import FALLBACK, kb_status, threshold_in_force

from .fakes import HashEmbedder
from .test_index import write_kb


def test_explicit_setting_wins_then_the_index_then_the_fallback(tmp_path: Path) -> None:
    emb = HashEmbedder()
    build_index(write_kb(tmp_path / "kb"), tmp_path / "index", embedder=emb, progress=False)  # type: ignore[arg-type]
    kb = KnowledgeBase.open(tmp_path / "index", embedder=emb)  # type: ignore[arg-type]
    assert threshold_in_force(0.7, kb).as_dict() == {
        "answer_threshold": 0.7,
        "threshold_source": "ANSWER_THRESHOLD",
    }
    calibrated = threshold_in_force(None, kb)
    assert calibrated.value == kb.threshold and calibrated.source == "index v1 calibration"
    assert threshold_in_force(None, object()).value == FALLBACK
    status = kb_status(kb, None)
    assert status["loaded"] and status["version"] == 1 and status["embed_backend"] == "torch"
    assert status["answer_threshold"] == round(kb.threshold, 4) == status["calibrated_threshold"]
    assert kb_status(None, 0.5) == {
        "loaded": False,
        "answer_threshold": 0.5,
        "threshold_source": "ANSWER_THRESHOLD",
    }
