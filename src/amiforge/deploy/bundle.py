"""Build the Lambda bundle: one zip, byte-for-byte reproducible, pure Python.

It holds amiforge's Lambda-side packages (errors, core, aws, steps, custom_resource,
handlers) and the dependencies the Lambda Python runtime lacks (aws-lambda-powertools and
its typing_extensions). boto3 is provided by the runtime and is not bundled. The same zip is
uploaded by `amiforge deploy` and run by the local cloud.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import amiforge

AMIFORGE_PARTS = ("__init__.py", "errors.py", "core", "aws", "steps", "custom_resource",
                  "handlers")
THIRD_PARTY = ("aws_lambda_powertools", "typing_extensions")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Bundle:
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def key(self) -> str:
        return f"bundles/amiforge-{amiforge.__version__}-{self.sha256[:16]}.zip"


def _files_under(root: Path, arc_root: str) -> Iterator[tuple[str, Path]]:
    if root.is_file():
        yield arc_root, root
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield f"{arc_root}/{path.relative_to(root).as_posix()}", path


def bundle_files() -> list[tuple[str, Path]]:
    package_dir = Path(amiforge.__file__).parent
    files: list[tuple[str, Path]] = []
    for part in AMIFORGE_PARTS:
        files.extend(_files_under(package_dir / part, f"amiforge/{part}"))
    for name in THIRD_PARTY:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} is not installed; reinstall amiforge (pip install .)")
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            files.extend(_files_under(origin.parent, name))
        else:
            files.append((origin.name, origin))
    return sorted(set(files))


def build_bundle() -> Bundle:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for arcname, path in bundle_files():
            info = zipfile.ZipInfo(arcname, date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return Bundle(buffer.getvalue())
