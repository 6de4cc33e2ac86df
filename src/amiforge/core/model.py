"""The recipe model: frozen, plain data, no I/O.

A :class:`Recipe` is what :mod:`amiforge.core.recipes` loads from a YAML file and its
scripts, what ``amiforge publish`` uploads (as :meth:`Recipe.to_document`), and what the
stack's Lambdas rebuild from that document (:func:`amiforge.core.parse.recipe_from_document`,
which validates it as a recipe file is validated) without the
files on disk. Its :attr:`Recipe.hash` is the same in all three places, which is what
lets a build key say "this exact content on this exact base was already built".

Every spec has a :meth:`to_document` giving its normalised form: all defaults filled in,
JSON-safe. That form is both what is hashed and what is published.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from amiforge.core import hashing, userdata
from amiforge.core.assets import Asset, manifest
from amiforge.core.naming import DEFAULT_TEMPLATE
from amiforge.core.rollout import RefreshTarget, TemplateTarget
from amiforge.core.test_spec import TestSpec
from amiforge.errors import InvalidInput

Platform = Literal["linux", "windows"]
DOCUMENT_FORMAT = 1

DEFAULT_INSTANCE_TYPES: dict[str, tuple[str, ...]] = {
    "linux": ("t3.small",), "windows": ("t3.medium",)}
# Windows builds spend 15+ minutes in updates and sysprep alone.
DEFAULT_TIMEOUT_MINUTES: dict[str, int] = {"linux": 45, "windows": 90}
# How many times detection rebuilds a failed build key on its own (core/plan.py).
DEFAULT_RETRY_FAILED = 2


@dataclass(frozen=True)
class BaseSpec:
    """Which image to build on: an SSM parameter, a filter over owned images, or one
    pinned image (``image_id``: it is its own newest version, so detection never sees
    a new base for it)."""

    ssm_parameter: str | None = None
    owners: tuple[str, ...] = ()
    name: str | None = None
    architecture: str | None = None
    image_id: str | None = None

    @property
    def is_ssm(self) -> bool:
        return self.ssm_parameter is not None

    def query_key(self) -> str:
        """Same query, same key: the detector asks AWS once per distinct key."""
        if self.image_id is not None:
            return f"image:{self.image_id}"
        if self.ssm_parameter is not None:
            return f"ssm:{self.ssm_parameter}"
        # Owner order does not change what DescribeImages returns.
        return "filter:" + hashing.canonical_json(
            {"owners": sorted(self.owners), "name": self.name,
             "architecture": self.architecture})

    def describe_images_args(self) -> dict[str, Any]:
        """Keyword arguments for EC2 DescribeImages (filter bases only)."""
        if self.ssm_parameter is not None:
            raise ValueError("an ssm_parameter base is resolved with SSM GetParameter, "
                             "not DescribeImages")
        if self.image_id is not None:
            raise ValueError("an image_id base is pinned: only a filter base is resolved "
                             "with DescribeImages filters")
        filters: list[dict[str, Any]] = [{"Name": "name", "Values": [self.name]}]
        if self.architecture:
            filters.append({"Name": "architecture", "Values": [self.architecture]})
        filters.append({"Name": "state", "Values": ["available"]})
        return {"Owners": list(self.owners), "Filters": filters}

    def label(self) -> str:
        """Short human description, for tables and messages."""
        if self.image_id is not None:
            return f"image:{self.image_id}"
        if self.ssm_parameter is not None:
            return f"ssm:{self.ssm_parameter}"
        arch = f" ({self.architecture})" if self.architecture else ""
        return f"{','.join(self.owners)}:{self.name}{arch}"

    def to_document(self) -> dict[str, Any]:
        if self.image_id is not None:
            return {"image_id": self.image_id}
        if self.ssm_parameter is not None:
            return {"ssm_parameter": self.ssm_parameter}
        return {"filter": {"owners": list(self.owners), "name": self.name,
                           "architecture": self.architecture}}


@dataclass(frozen=True)
class BuildSpec:
    """How the build instance is launched and how long it may take."""

    platform: Platform = "linux"
    user_data_file: str | None = None
    instance_types: tuple[str, ...] = ("t3.small",)
    subnet_id: str | None = None
    security_group_ids: tuple[str, ...] = ()
    timeout_minutes: int = 45
    retries: int = 1
    retry_failed: int = DEFAULT_RETRY_FAILED
    volume_size_gb: int | None = None
    # A CloudFormation template that makes the build instance (SABS style), instead of
    # wrapped user data; hashed and published with the recipe.
    cloudformation: str | None = None
    # Tags for the build instance and its volumes (cost allocation); the image's own tags
    # are image.tags. Never an ``amiforge:`` key (validation refuses them).
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    # None: the subnet's own default (MapPublicIpOnLaunch) decides.
    associate_public_ip: bool | None = None
    # Directories beside the recipe whose files the builder fetches (core/assets.py).
    files: tuple[str, ...] = ()
    # An instance profile the stack's AllowedInstanceProfiles lists (None: the stack's).
    instance_profile: str | None = None
    # Values for the build template's parameters (build.cloudformation only), as strings.
    parameters: dict[str, str] = field(default_factory=dict, hash=False)

    def to_document(self, script: str) -> dict[str, Any]:
        # retry_failed only when not the default: recipes that do not set it keep the
        # hash they always had.
        policy = ({"retry_failed": self.retry_failed}
                  if self.retry_failed != DEFAULT_RETRY_FAILED else {})
        return {
            **policy,
            "platform": self.platform,
            "user_data": self.user_data_file,
            # Inline scripts are part of the document; file scripts are hashed as files.
            "script": script if self.user_data_file is None and self.cloudformation is None
            else None,
            "cloudformation": self.cloudformation,
            "instance_types": list(self.instance_types),
            "subnet_id": self.subnet_id,
            "security_group_ids": list(self.security_group_ids),
            "timeout_minutes": self.timeout_minutes,
            "retries": self.retries,
            "volume_size_gb": self.volume_size_gb,
            # None when unset: recipes that do not use them keep the hash they always had.
            "tags": dict(self.tags) or None,
            "associate_public_ip": self.associate_public_ip,
            "files": list(self.files) or None,
            "instance_profile": self.instance_profile,
            "parameters": dict(self.parameters) or None,
        }


@dataclass(frozen=True)
class ImageSpec:
    """What the image is called, tagged with, and where it goes."""

    name: str = DEFAULT_TEMPLATE
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    regions: tuple[str, ...] = ()
    share_with: tuple[str, ...] = ()
    kms_key_id: str | None = None
    deprecate_after_days: int | None = None
    # A key per copy region; regions without one use kms_key_id (an alias resolves in
    # each region) or, with no key at all, the region's default EBS key.
    region_kms_key_ids: dict[str, str] = field(default_factory=dict, hash=False)

    def kms_key_for(self, region: str) -> str | None:
        return self.region_kms_key_ids.get(region) or self.kms_key_id

    def to_document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "tags": dict(self.tags),
            "regions": list(self.regions),
            "share_with": list(self.share_with),
            "kms_key_id": self.kms_key_id,
            "deprecate_after_days": self.deprecate_after_days,
            # None when empty: recipes that do not use it keep the hash they always had.
            "region_kms_key_ids": dict(self.region_kms_key_ids) or None,
        }


@dataclass(frozen=True)
class RetentionSpec:
    """How many images to keep, and for how long (the newest ``keep`` always stay)."""

    keep: int = 5
    max_age_days: int | None = 90

    def to_document(self) -> dict[str, Any]:
        return {"keep": self.keep, "max_age_days": self.max_age_days}


APPROVAL_MODES = ("none", "manual")
DEFAULT_APPROVAL_TIMEOUT_HOURS = 72
# Step Functions ends a task after at most a year; a month is as long as an image should
# wait for a person (its base is stale by then).
MAX_APPROVAL_TIMEOUT_HOURS = 720


@dataclass(frozen=True)
class ReleaseSpec:
    """How a built image is released. ``approval: manual`` holds it AWAITING_APPROVAL
    (before copies, sharing and `latest`) until ``amiforge approve`` or ``reject``, or
    until ``approval_timeout_hours`` pass (then the build fails). ``launch_templates``
    and ``instance_refresh`` roll the released image out (core/rollout.py)."""

    approval: str = "none"
    approval_timeout_hours: int = DEFAULT_APPROVAL_TIMEOUT_HOURS
    launch_templates: tuple[TemplateTarget, ...] = ()
    instance_refresh: tuple[RefreshTarget, ...] = ()

    @property
    def rolls_out(self) -> bool:
        return bool(self.launch_templates or self.instance_refresh)

    @property
    def manual(self) -> bool:
        return self.approval == "manual"

    def to_document(self) -> dict[str, Any] | None:
        # None when there is no gate: recipes without `release` keep the hash they always
        # had. With one, it is part of the hash: changing the release policy publishes a
        # new version (or the store would keep the old policy), which builds a new key.
        # A rollout is part of it the same way, and only when there is one.
        if not self.manual and not self.rolls_out:
            return None
        document: dict[str, Any] = {"approval": self.approval}
        if self.manual:
            document["approval_timeout_hours"] = self.approval_timeout_hours
        if self.launch_templates:
            document["launch_templates"] = [t.to_document() for t in self.launch_templates]
        if self.instance_refresh:
            document["instance_refresh"] = [t.to_document() for t in self.instance_refresh]
        return document


@dataclass(frozen=True)
class Recipe:
    """One validated recipe with the content of every file it references."""

    name: str
    description: str | None
    base: BaseSpec
    build: BuildSpec
    image: ImageSpec
    retention: RetentionSpec
    script: str
    files: dict[str, bytes] = field(default_factory=dict, hash=False)
    source: str = "<document>"
    release: ReleaseSpec = field(default_factory=ReleaseSpec)
    # The ``test:`` section (core/test_spec.py): run on an instance of the new image.
    test: TestSpec | None = None
    # The files of build.files (path, sha256, size): hashed, never inlined.
    assets: tuple[Asset, ...] = ()

    def spec_document(self) -> dict[str, Any]:
        """The normalised recipe (defaults applied), without files: what is hashed."""
        return {
            "name": self.name,
            "description": self.description,
            "base": self.base.to_document(),
            "build": self.build.to_document(self.script),
            "image": self.image.to_document(),
            "retention": self.retention.to_document(),
            "release": self.release.to_document(),
            # None without a test: dropped before hashing, so such recipes keep their hash.
            "test": self.test.to_document() if self.test is not None else None,
            # None without build.files: such recipes keep their hash.
            "assets": manifest(self.assets),
        }

    @cached_property
    def hash(self) -> str:
        return hashing.recipe_hash(self.spec_document(), self.files)

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    @property
    def builder(self) -> str:
        """How the build instance is made: "user_data" (run_instances) or "cloudformation"."""
        return "cloudformation" if self.build.cloudformation is not None else "user_data"

    def cloudformation_template(self) -> str:
        """The build template's text (``build.cloudformation``), for CreateStack."""
        if self.build.cloudformation is None:
            raise InvalidInput(f"{self.source}: recipe {self.name!r} has no build.cloudformation")
        return self.files[self.build.cloudformation].decode("utf-8")

    def user_data(self, assets_url: str | None = None) -> str:
        """The wrapped script for RunInstances (plain text; boto3 base64-encodes it).

        ``assets_url``: the presigned URL of this launch's list of build.files URLs
        (core/assets.py), which the wrapper fetches before the script runs."""
        if self.build.cloudformation is not None:
            raise InvalidInput(
                f"{self.source}: build.cloudformation: recipe {self.name!r} builds from a "
                "CloudFormation template, which configures the instance itself: it has no "
                "user data for amiforge to wrap")
        return userdata.wrap(self.build.platform, self.script, recipe_name=self.name,
                             recipe_hash=self.hash, assets_url=assets_url)

    def test_user_data(self) -> str:
        """The wrapped test script (same wrapper and marker as the build's), for the
        tester's RunInstances."""
        if self.test is None:
            raise InvalidInput(f"{self.source}: recipe {self.name!r} has no test section")
        return userdata.wrap(self.build.platform, self.test.script, recipe_name=self.name,
                             recipe_hash=self.hash)

    def to_document(self) -> dict[str, Any]:
        """Everything needed to rebuild this recipe elsewhere; JSON-safe."""
        return {
            "format": DOCUMENT_FORMAT,
            **self.spec_document(),
            "files": {path: base64.b64encode(data).decode("ascii")
                      for path, data in sorted(self.files.items())},
            "source": self.source,
            "hash": self.hash,
        }
