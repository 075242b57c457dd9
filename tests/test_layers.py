"""The one-way arrow, checked on the source: bot -> workflows -> storage, Slack only in bot."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SLACK = ("slack_bolt", "slack_sdk")
# What each layer may not import: those above it, and (below bot) the Slack libraries.
FORBIDDEN = {
    "storage": ("bot", "scheduling", "workflows", *SLACK),
    "workflows": ("bot", "scheduling", *SLACK),
}


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it_and_no_slack_library(layer: str) -> None:
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, f"no modules found in {layer}/"
    offending = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in files
        for module in imports_of(path)
        if module.split(".")[0] in FORBIDDEN[layer]
    }
    assert not offending, "imports against the arrow:\n" + "\n".join(sorted(offending))


def test_the_check_sees_an_import_against_the_arrow(tmp_path: Path) -> None:
    module = tmp_path / "sample.py"
    module.write_text("def f():\n    from slack_sdk import WebClient\n    import bot.gateway\n")
    assert imports_of(module) == {"slack_sdk", "bot.gateway"}
