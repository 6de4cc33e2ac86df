"""The tags amiforge puts on everything it creates (a contract: see docs/architecture.md).

The sweeper and retention find amiforge's resources by these tags. ``amiforge:stack``
names the stack that made the resource: every destructive IAM permission in the template
is conditioned on it equalling the stack's own name, so a stack can only ever remove what
it made (and nobody can hand it something to delete by setting a tag key that merely
exists). Tags are set at creation only; no role may add them later.
"""

from __future__ import annotations

from collections.abc import Mapping

RECIPE = "amiforge:recipe"
BUILD_ID = "amiforge:build-id"
RECIPE_HASH = "amiforge:recipe-hash"
BASE_AMI = "amiforge:base-ami"
GIT_COMMIT = "amiforge:git-commit"
STACK = "amiforge:stack"
ROLE = "amiforge:role"
ATTEMPT = "amiforge:attempt"
BUILDER = "builder"
TESTER = "tester"  # an instance of the new image running the recipe's test


def build_tags(*, recipe: str, build_id: str, recipe_hash: str, base_ami: str,
               git_commit: str | None, stack: str) -> dict[str, str]:
    if not stack:
        # A resource without the stack tag could never be removed by the stack's roles.
        raise ValueError("the stack name is required to tag what a build creates")
    return {
        STACK: stack,
        RECIPE: recipe,
        BUILD_ID: build_id,
        RECIPE_HASH: recipe_hash,
        BASE_AMI: base_ami,
        GIT_COMMIT: git_commit or "unknown",
    }


def builder_tags(common: Mapping[str, str], *, attempt: int,
                 user_tags: Mapping[str, str] | None = None) -> dict[str, str]:
    """The build instance's (and its volumes') tags: the recipe's ``build.tags`` (cost
    allocation; they may rename the instance with ``Name``), then amiforge's own, which
    win: the sweeper and the deletion gate find builders by them."""
    return {"Name": f"amiforge-builder-{common[RECIPE]}", **dict(user_tags or {}),
            **common, ROLE: BUILDER, ATTEMPT: str(attempt)}


def tester_tags(common: Mapping[str, str]) -> dict[str, str]:
    return {**common, ROLE: TESTER, "Name": f"amiforge-tester-{common[RECIPE]}"}


def image_tags(common: Mapping[str, str], user_tags: Mapping[str, str]) -> dict[str, str]:
    # amiforge's own tags win: a recipe must not be able to forge another build's identity.
    return {**dict(user_tags), **common}
