"""build.files through the CLI and the deployed stack on the local cloud: a recipe with
files builds (its simulated builder downloads them from the stack's bucket through
presigned URLs and checks the content), with no instance profile; changing one file
changes the recipe hash, and publishing it builds again."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from amiforge.core.tags import BUILD_ID

pytestmark = pytest.mark.e2e

AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"


def write(directory: Path, name: str, motd: str) -> Path:
    (directory / "scripts").mkdir(parents=True, exist_ok=True)
    (directory / "files").mkdir(exist_ok=True)
    (directory / "files" / "motd").write_text(motd)
    (directory / "scripts" / f"{name}.sh").write_text(
        '#!/bin/bash\nset -e\n# amiforge-sim: require files/motd golden\n'
        'install -m 644 "$AMIFORGE_FILES/files/motd" /etc/motd\n')
    (directory / f"{name}.yaml").write_text(
        f"name: {name}\nbase: {{ssm_parameter: {AL2023}}}\nbuild:\n  platform: linux\n"
        f"  user_data: scripts/{name}.sh\n  files: [files]\n  retries: 0\n")
    return directory


def publish_and_wait(amiforge: Any, directory: Path) -> dict[str, Any]:
    result = amiforge("publish", "--wait", str(directory), output="json")
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_a_recipe_with_files_builds_and_a_changed_file_rebuilds(amiforge: Any, aws: Any,
                                                                tmp_path: Path) -> None:
    name = f"files-{uuid.uuid4().hex[:8]}"
    first = publish_and_wait(amiforge, write(tmp_path, name, "a golden image, v1\n"))
    [recipe] = first["recipes"]
    assert recipe["files_uploaded"] == 1 and recipe["build_started"]
    [built] = first["builds"]
    assert built["status"] == "AVAILABLE", built
    (builder,) = [i for r in aws.client("ec2").describe_instances(Filters=[
        {"Name": f"tag:{BUILD_ID}", "Values": [built["build_id"]]}])["Reservations"]
        for i in r["Instances"]]
    assert "IamInstanceProfile" not in builder

    # Publishing the same content again: same hash, nothing uploaded, nothing built.
    again = publish_and_wait(amiforge, tmp_path)
    assert again["recipes"][0]["changed"] is False
    assert again["recipes"][0]["files_uploaded"] == 0
    assert again["recipes"][0]["build_started"] is None

    # One file changes: a new hash, the file goes up, and the recipe builds again.
    (tmp_path / "files" / "motd").write_text("a golden image, v2\n")
    second = publish_and_wait(amiforge, tmp_path)
    [changed] = second["recipes"]
    assert changed["changed"] is True and changed["previous_hash"] == recipe["hash"]
    assert changed["hash"] != recipe["hash"] and changed["files_uploaded"] == 1
    [rebuilt] = second["builds"]
    assert rebuilt["status"] == "AVAILABLE" and rebuilt["build_id"] != built["build_id"]


def test_a_build_whose_file_lacks_the_content_fails_with_the_reason(
        amiforge: Any, tmp_path: Path) -> None:
    name = f"files-{uuid.uuid4().hex[:8]}"
    result = amiforge("publish", "--wait", str(write(tmp_path, name, "not the one\n")),
                      output="json")
    assert result.exit_code == 1, result.output
    [failed] = json.loads(result.stdout)["builds"]
    assert failed["status"] == "FAILED"
    history = amiforge("history", name, output="json")
    assert "files/motd does not contain 'golden'" in history.stdout
