"""The README's settings table is generated from ``Settings`` (tools/settings_table.py) and
must stay what the generator prints: a setting added, renamed, removed or re-described without
``make docs`` fails here, so the README cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings
from tools import settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_table_is_the_generated_one():
    current = settings_table.generated_part(README.read_text(encoding="utf-8"))
    assert current is not None, "README.md has lost its settings table markers"
    assert current == settings_table.block(), (
        "README.md's settings table differs from app/settings.py: run `make docs`"
    )


def test_every_setting_is_in_the_table_with_a_description():
    rows = settings_table.settings_table().splitlines()[2:]
    assert len(rows) == len(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name}: add a docstring under the field (it is the README's text)"
        assert any(row.startswith(f"| `{name.upper()}` |") for row in rows)


def test_each_default_shown_reproduces_the_default_when_set(monkeypatch: pytest.MonkeyPatch):
    """The default column is what a user would type: setting every variable to the value the
    table shows gives the same Settings as setting none."""
    for line in settings_table.settings_table().splitlines()[2:]:
        variable, _type, default, _description = (c.strip() for c in line.strip("|").split(" | "))
        if default != "unset":
            monkeypatch.setenv(variable.strip("`"), default.strip("`"))
    assert Settings().model_dump() == Settings.model_construct().model_dump()


def test_types_name_choices_bounds_and_secrets():
    table = settings_table.settings_table()
    assert "| `WORKER_WEB_PORT` | integer, ≥ 1, ≤ 65535 | `6066` |" in table
    assert "| `EVENT_LOOP` | `uvloop` / `asyncio` | `uvloop` |" in table
    assert "| `API_TOKEN` | secret | unset |" in table
    assert "| `VIEWS_GAP_CHECK` | `true` / `false` | `true` |" in table


def test_write_replaces_only_the_marked_table(tmp_path: Path):
    readme = tmp_path / "README.md"
    stale = f"{settings_table.BEGIN}\n| old | table |\n{settings_table.END}"
    readme.write_text(f"# title\n\n{stale}\n\n## after\n", encoding="utf-8")
    assert settings_table.write(readme) is True
    assert readme.read_text(encoding="utf-8") == f"# title\n\n{settings_table.block()}\n\n## after\n"
    assert settings_table.write(readme) is False


def test_write_refuses_a_file_without_markers(tmp_path: Path):
    readme = tmp_path / "README.md"
    readme.write_text("# no table here\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        settings_table.write(readme)
    assert readme.read_text(encoding="utf-8") == "# no table here\n"
