"""`KbRecord`: the one shape of a message's ``meta["kb"]``, written by the turn and read everywhere."""

from __future__ import annotations

from kb_index.types import Hit, HitRecord, KbRecord


def test_a_record_round_trips_through_meta_json_as_the_turn_stored_it() -> None:
    hit = Hit("returns", "Returns", "", "30 days", score=0.812345, confidence=0.912345, context="I bought a lamp")
    record = KbRecord(query="I bought a lamp how long do I have", answered=True, hits=(HitRecord.of(hit),),
                      context_turn="I bought a lamp")
    meta = record.to_meta()
    assert meta == {"query": "I bought a lamp how long do I have", "context_turn": "I bought a lamp",
                    "answered": True,
                    "hits": [{"article_id": "returns", "title": "Returns", "confidence": 0.9123, "score": 0.8123}]}
    assert KbRecord.from_meta({"kb": meta}) == record


def test_missing_or_odd_fields_read_safely() -> None:
    assert KbRecord.from_meta(None) is None and KbRecord.from_meta({"kb": "x"}) is None
    old = KbRecord.from_meta({"kb": {"hits": [{"article_id": "a", "confidence": "n/a"}, "junk"]}}, text="hi")
    assert old == KbRecord(query="hi", answered=None, hits=(HitRecord("a"),))
    assert not old.missed  # not decided is not a gap
    assert KbRecord.from_meta({"kb": {"query": "q", "answered": False}}, text="hi").missed  # type: ignore[union-attr]


def test_erased_hits_keep_only_their_article_id_and_a_downvote_is_kept() -> None:
    record = KbRecord(query="[erased]", answered=False, hits=(HitRecord("returns"),), downvoted=True)
    assert record.to_meta() == {"query": "[erased]", "answered": False, "hits": [{"article_id": "returns"}],
                                "downvoted": True}
