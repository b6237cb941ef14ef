"""Where the demo finds its sample input (the demo itself runs in tests/test_cli.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import nexudus_async
from nexudus_async import _demo
from nexudus_async._create_command import CommandError
from nexudus_async._progress_display import QuietDisplay

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Point the demo at a packaged and a repository copy, neither written yet."""
    packaged = tmp_path / "package" / "_examples" / "import-files.csv"
    repository = tmp_path / "examples" / "import-files.csv"
    monkeypatch.setattr(_demo, "PACKAGED_EXAMPLE", packaged)
    monkeypatch.setattr(_demo, "REPOSITORY_EXAMPLE", repository)

    return packaged, repository


def _write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("BusinessId,Name\n1,a\n", encoding="utf-8")

    return path


class TestExampleFile:
    def test_the_installed_copy_comes_first(self, copies: tuple[Path, Path]) -> None:
        """An installed package uses the copy the wheel put inside it."""
        packaged, repository = copies
        _write(packaged)
        _write(repository)

        assert _demo.example_file() == packaged

    def test_a_source_checkout_falls_back_to_examples(
        self, copies: tuple[Path, Path]
    ) -> None:
        """An editable install, with no copy in the package, uses examples/."""
        _, repository = copies
        _write(repository)

        assert _demo.example_file() == repository

    def test_with_neither_the_packaged_path_is_named(
        self, copies: tuple[Path, Path]
    ) -> None:
        """With no copy anywhere, the path an installed demo looks at is reported."""
        packaged, _ = copies

        assert _demo.example_file() == packaged

    async def test_a_missing_example_is_a_command_error(
        self, copies: tuple[Path, Path]
    ) -> None:
        """The demo without its sample says where it looked and how to go on."""
        with pytest.raises(CommandError, match="pass --input FILE"):
            await _demo.run_demo(QuietDisplay(io.StringIO()))

    def test_the_wheel_puts_the_example_where_the_demo_looks(self) -> None:
        """pyproject.toml copies examples/ into the package path the demo reads first."""
        package = Path(nexudus_async.__file__).resolve().parent
        packaged = _demo.PACKAGED_EXAMPLE.relative_to(package.parent).as_posix()
        repository = _demo.REPOSITORY_EXAMPLE.relative_to(package.parent).as_posix()
        pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")

        assert f'"{repository}" = "{packaged}"' in pyproject
        assert (ROOT / repository).is_file()
