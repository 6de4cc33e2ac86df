"""Fixtures for the pure-core unit tests: recipe directories written to tmp_path."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from amiforge.core.model import Recipe
from amiforge.core.recipes import load_recipes
from amiforge.errors import RecipeInvalid

AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"
VALID: dict[str, Any] = {
    "name": "web",
    "description": "Nginx tier",
    "base": {"ssm_parameter": AL2023},
    "build": {"platform": "linux", "user_data": "scripts/web.sh"},
}
SCRIPT = "#!/bin/bash\nset -e\necho hello\n"


def valid_doc(**sections: Any) -> dict[str, Any]:
    """A fresh valid recipe document, with top-level keys replaced by ``sections``."""
    doc = copy.deepcopy(VALID)
    doc.update(sections)
    return doc


@dataclass
class RecipeDir:
    root: Path

    def valid(self, **sections: Any) -> dict[str, Any]:
        return valid_doc(**sections)

    def write(self, relative: str, content: str | bytes) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8"))
        return path

    def recipe(self, doc: dict[str, Any], filename: str = "web.yaml",
               script: str | None = SCRIPT) -> Path:
        """Write a recipe (and, by default, the scripts/web.sh it references)."""
        if script is not None:
            self.write("scripts/web.sh", script)
        return self.write(filename, yaml.safe_dump(doc, sort_keys=False))

    def load(self) -> list[Recipe]:
        return load_recipes(self.root)

    def problems(self) -> list[tuple[str, str | None, str]]:
        """(file relative to the directory, field, message) of every problem found."""
        with pytest.raises(RecipeInvalid) as info:
            load_recipes(self.root)
        return [(self.rel(p.where), p.field, p.message) for p in info.value.problems]

    def rel(self, where: str) -> str:
        try:
            return Path(where).relative_to(self.root).as_posix()
        except ValueError:
            return where


@pytest.fixture
def recipe_dir(tmp_path: Path) -> RecipeDir:
    return RecipeDir(tmp_path)
