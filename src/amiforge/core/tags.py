"""The tags amiforge puts on everything it creates (a contract: see docs/architecture.md).

The sweeper and retention find amiforge's resources by these tags, and IAM policies
condition destructive EC2 actions on ``amiforge:recipe`` being present.
"""

from __future__ import annotations

from collections.abc import Mapping

RECIPE = "amiforge:recipe"
BUILD_ID = "amiforge:build-id"
RECIPE_HASH = "amiforge:recipe-hash"
BASE_AMI = "amiforge:base-ami"
GIT_COMMIT = "amiforge:git-commit"
ROLE = "amiforge:role"
ATTEMPT = "amiforge:attempt"
BUILDER = "builder"


def build_tags(*, recipe: str, build_id: str, recipe_hash: str, base_ami: str,
               git_commit: str | None) -> dict[str, str]:
    return {
        RECIPE: recipe,
        BUILD_ID: build_id,
        RECIPE_HASH: recipe_hash,
        BASE_AMI: base_ami,
        GIT_COMMIT: git_commit or "unknown",
    }


def builder_tags(common: Mapping[str, str], *, attempt: int) -> dict[str, str]:
    return {**common, ROLE: BUILDER, ATTEMPT: str(attempt),
            "Name": f"amiforge-builder-{common[RECIPE]}"}


def image_tags(common: Mapping[str, str], user_tags: Mapping[str, str]) -> dict[str, str]:
    # amiforge's own tags win: a recipe must not be able to forge another build's identity.
    return {**dict(user_tags), **common}
