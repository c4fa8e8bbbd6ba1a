"""The docs say what the code does: README's configuration table is the settings model's."""

from __future__ import annotations

from pathlib import Path

from services.runtime.settings import Settings, markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_holds_the_generated_configuration_table() -> None:
    readme = README.read_text()
    assert markdown_table() in readme, (
        "README's configuration table is stale: paste `python -m services.runtime.settings`"
    )
    for name in Settings.model_fields:
        assert f"`CARDFLOW_{name.upper()}`" in readme


def test_readme_starts_with_what_it_is_and_the_two_commands() -> None:
    readme = README.read_text()
    assert readme.index("make demo") < readme.index("## Configuration")
    assert readme.index("make test") < readme.index("## Configuration")
