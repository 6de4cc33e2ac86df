"""The Lambda bundle: reproducible, pure Python, complete without site-packages."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

from amiforge.deploy.bundle import build_bundle

LAMBDA_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3")


def test_two_builds_are_byte_identical() -> None:
    assert build_bundle().data == build_bundle().data


def test_is_pure_python_and_leaves_out_cli_and_emulator() -> None:
    names = zipfile.ZipFile(io.BytesIO(build_bundle().data)).namelist()
    assert not [n for n in names if n.endswith((".so", ".pyd", ".dylib"))]
    assert not [n for n in names if n.startswith(("amiforge/cli/", "amiforge/localcloud/"))]
    assert "amiforge/handlers/pipeline.py" in names
    assert "aws_lambda_powertools/__init__.py" in names


def test_handlers_import_with_only_the_bundle_and_the_lambda_runtime(tmp_path: Path) -> None:
    zipfile.ZipFile(io.BytesIO(build_bundle().data)).extractall(tmp_path / "task")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in LAMBDA_RUNTIME:
        module = __import__(name)
        source = Path(module.__file__)
        target = source.parent if source.name == "__init__.py" else source
        (runtime / target.name).symlink_to(target)
    (runtime / "six.py").symlink_to(Path(__import__("six").__file__))
    code = (f"import sys; sys.path[:0] = [{str(tmp_path / 'task')!r}, {str(runtime)!r}]\n"
            "import amiforge.handlers.pipeline, amiforge.handlers.latest_ami\n"
            # every function's step, which the module imports only when it is called
            "for step in amiforge.handlers.pipeline.HANDLERS.values(): step.resolve()\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('yaml', 'click', 'rich', 'moto')]\n"
            "print('OK' if not bad else bad)")
    env = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "PATH": "/usr/bin"}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.stdout.strip() == "OK", result.stdout + result.stderr
