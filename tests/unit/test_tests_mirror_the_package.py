"""Every module of ``steps/`` and ``aws/`` has a test module named after it, under a
test folder named after its package (``tests/<tier>/steps/test_launch.py`` for
``steps/launch.py``): a new step or adapter cannot land covered only by end-to-end runs."""

from __future__ import annotations

from pathlib import Path

import amiforge

SRC = Path(amiforge.__file__).parent
TESTS = Path(__file__).resolve().parents[1]
MIRRORED = ("steps", "aws")


def missing_test_modules(src: Path, tests: Path) -> list[str]:
    missing = []
    for package in MIRRORED:
        for module in sorted((src / package).glob("*.py")):
            if module.stem == "__init__":
                continue
            if not list(tests.glob(f"*/{package}/test_{module.stem}.py")):
                missing.append(f"{package}/{module.name}")
    return missing


def test_every_step_and_adapter_has_a_test_module() -> None:
    assert missing_test_modules(SRC, TESTS) == []


def test_a_module_without_one_is_named(tmp_path: Path) -> None:
    (tmp_path / "src" / "steps").mkdir(parents=True)
    (tmp_path / "src" / "aws").mkdir()
    for name in ("__init__.py", "launch.py", "verify.py"):
        (tmp_path / "src" / "steps" / name).write_text("")
    (tmp_path / "tests" / "functional" / "steps").mkdir(parents=True)
    (tmp_path / "tests" / "functional" / "steps" / "test_launch.py").write_text("")
    assert missing_test_modules(tmp_path / "src", tmp_path / "tests") == ["steps/verify.py"]
