"""The README's configuration table lists every setting (regenerate: python -m bot.settings)."""

from pathlib import Path

from bot.settings import markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_table_is_current() -> None:
    text = README.read_text()
    block = text.split("<!-- config:start -->")[1].split("<!-- config:end -->")[0].strip()
    assert block == markdown_table(), "README config table is stale: run `python -m bot.settings`"
