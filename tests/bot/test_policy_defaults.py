"""The handoff policy's defaults are defined once (handoff.policy) and Settings uses them, so the
app and a bare PolicyConfig() decide the same way."""

from bot.app import policy_config
from bot.settings import Settings
from handoff.policy import DEFAULT_KEYWORDS, PolicyConfig


def test_settings_defaults_are_the_policy_defaults(settings_factory) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = settings_factory()
    from_settings = policy_config(settings)
    bare = PolicyConfig()
    assert from_settings.low_confidence_limit == bare.low_confidence_limit == 1
    assert from_settings.keywords == bare.keywords == DEFAULT_KEYWORDS
    assert from_settings.sentiment_threshold == bare.sentiment_threshold
    assert from_settings.enabled == bare.enabled
