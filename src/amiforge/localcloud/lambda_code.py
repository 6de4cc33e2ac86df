"""A function's code on disk: its zip and layers extracted once, and the runtime dir.

The *runtime dir* holds symlinks to the packages AWS's Python runtime provides
(:data:`RUNTIME_PACKAGES`) and the bootstrap scripts; with the zip and its layers it is
all an execution environment's ``sys.path`` holds, so a bundle that forgot a dependency
fails here as it would on AWS.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
import threading
import zipfile
from importlib import import_module
from pathlib import Path
from typing import Any

from amiforge.localcloud.lambda_forkserver import ZYGOTE, zygote_preload

# What the AWS Lambda Python runtime provides besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")


def build_runtime_dir(runtime_dir: Path) -> frozenset[str]:
    """Fill ``runtime_dir``; the top-level names the fork server preloads (a bundle that
    ships its own copy of one must get it, so such a function starts fresh)."""
    runtime_dir.mkdir()
    for name in RUNTIME_PACKAGES:
        module = import_module(name)
        origin = Path(module.__file__ or "")
        target = origin.parent if origin.name == "__init__.py" else origin
        (runtime_dir / target.name).symlink_to(target)
    shutil.copy(BOOTSTRAP, runtime_dir / BOOTSTRAP.name)
    shutil.copy(ZYGOTE, runtime_dir / ZYGOTE.name)
    return frozenset([*RUNTIME_PACKAGES, *(name.split(".")[0] for name in zygote_preload())])


class CodeStore:
    """Extracted code under ``workdir/code``, one directory per code hash or layer."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._lock = threading.Lock()

    def extract(self, key: str, code: bytes) -> Path:
        """Extract ``code`` once per ``key``; concurrent invokes share the directory."""
        target = self.workdir / "code" / hashlib.sha256(key.encode()).hexdigest()[:24]
        with self._lock:
            if not target.is_dir():
                partial = target.with_name(target.name + ".partial")
                shutil.rmtree(partial, ignore_errors=True)
                partial.mkdir(parents=True)
                if code:
                    with zipfile.ZipFile(io.BytesIO(code)) as archive:
                        archive.extractall(partial)
                partial.rename(target)
        return target

    def task_dir(self, fn: Any) -> Path:
        code = getattr(fn, "code_bytes", b"") or b""
        key = f"code:{getattr(fn, 'code_sha_256', '')}:{hashlib.sha256(code).hexdigest()}"
        return self.extract(key, code)

    def layer_dirs(self, fn: Any) -> list[str]:
        from moto.awslambda.utils import get_backend

        dirs: list[str] = []
        for layer in getattr(fn, "layers", None) or []:
            version = get_backend(fn.account_id, fn.region).layers_versions_by_arn(layer["Arn"])
            if version is None:
                continue
            root = self.extract(f"layer:{layer['Arn']}", version.code_bytes or b"")
            py = f"python{sys.version_info.major}.{sys.version_info.minor}"
            dirs += [str(root / "python" / "lib" / py / "site-packages"), str(root / "python")]
        return dirs
