"""Rewrite the README's configuration table from `Settings` (`python -m bot.readme_table`)."""

from pathlib import Path

from bot.settings import markdown_table


def main() -> None:
    path = Path("README.md")
    text = path.read_text()
    head, rest = text.split("<!-- config:start -->")
    _, tail = rest.split("<!-- config:end -->")
    path.write_text(f"{head}<!-- config:start -->\n{markdown_table()}\n<!-- config:end -->{tail}")


if __name__ == "__main__":
    main()
