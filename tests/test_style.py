"""House rules that a reviewer would otherwise have to remember."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nexudus_async"
TESTS = ROOT / "tests"


def _python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


class TestTests:
    @pytest.mark.parametrize("path", _python_files(TESTS), ids=lambda p: p.name)
    def test_every_test_says_what_it_checks(self, path: Path) -> None:
        """Each test function carries a one-line docstring stating the behaviour."""
        tree = ast.parse(path.read_text(encoding="utf-8"))
        missing = [
            f"{path.name}:{node.lineno} {node.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")
            and ast.get_docstring(node) is None
        ]
        assert missing == []


class TestSources:
    @pytest.mark.parametrize("path", _python_files(PACKAGE), ids=lambda p: p.name)
    def test_no_issue_numbers_or_stray_markers(self, path: Path) -> None:
        """Code never points at the tracker, and shortcomings use one marker form."""
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?i)\bissue\s*#?\d+|(?<![\w&])#\d+\b", text)
        for marker in re.findall(r"#\s*(TODO|FIXME|XXX|HACK)\b", text):
            pytest.fail(
                f"{path.name}: use '# LIMITATION(<exit condition>): ...', not {marker}"
            )
        for match in re.finditer(r"LIMITATION(\(([^)]*)\))?:", text):
            assert match.group(2), f"{path.name}: LIMITATION needs an exit condition"

    @pytest.mark.parametrize("path", _python_files(PACKAGE), ids=lambda p: p.name)
    def test_private_modules_declare_all(self, path: Path) -> None:
        """Every module of the package states its public names in __all__."""
        if path.name in {"__main__.py", "_version.py"}:
            return
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign | ast.AnnAssign)
            for target in (
                node.targets if isinstance(node, ast.Assign) else [node.target]
            )
            if isinstance(target, ast.Name)
        }
        assert "__all__" in names, path.name
