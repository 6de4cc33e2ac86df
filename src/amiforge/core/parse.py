"""Recipe documents -> :class:`~amiforge.core.model.Recipe`, with every problem reported.

One parser serves two sources: recipe files on disk (:mod:`amiforge.core.recipes` reads
the YAML and supplies referenced files from beside it) and published documents
(:func:`recipe_from_document` supplies them from the document's ``files``). Both get
identical checks and messages, so what ``amiforge validate`` accepts is exactly what the
stack accepts.

The field reference lives in docs/recipes.md; keep it in step with this module.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from amiforge.core import rules
from amiforge.core.assets import (
    Asset,
    AssetLister,
    document_lister,
    parse_build_files,
    parse_instance_profile,
)
from amiforge.core.model import (
    DEFAULT_INSTANCE_TYPES,
    DEFAULT_RETRY_FAILED,
    DEFAULT_TIMEOUT_MINUTES,
    DOCUMENT_FORMAT,
    BaseSpec,
    BuildSpec,
    Platform,
    Recipe,
)
from amiforge.core.parse_sections import (
    any_of,
    count,
    image_section,
    one_of,
    release_section,
    retention_section,
    tags_section,
)
from amiforge.core.schema import Fields, describe
from amiforge.core.template_parameters import parameters_section
from amiforge.core.test_spec import parse_test
from amiforge.core.userdata import ASSETS_URL_ROOM, USER_DATA_LIMIT, user_data_size
from amiforge.errors import Problem, RecipeInvalid

TOP_KEYS = ("name", "description", "base", "build", "image", "retention", "release",
            "test")
BASE_KEYS = ("ssm_parameter", "filter", "image_id")
FILTER_KEYS = ("owners", "name", "architecture")
BUILD_KEYS = ("platform", "user_data", "script", "cloudformation", "instance_types",
              "subnet_id", "security_group_ids", "timeout_minutes", "retries",
              "retry_failed", "volume_size_gb", "tags", "associate_public_ip", "files",
              "instance_profile", "parameters")
SCRIPT_KEYS = ("user_data", "script", "cloudformation")
DOCUMENT_KEYS = (*TOP_KEYS, "format", "files", "source", "hash", "assets")

# Reads a referenced file by the path written in the recipe; raises LookupError with a
# message naming where it looked.
FileReader = Callable[[str], bytes]

_ABSOLUTE = re.compile(r"^(/|\\|[A-Za-z]:)")
PATH_MAX = 1024


def _check_path_text(value: str) -> str | None:
    """A file path in a recipe: no control characters (a NUL cannot be in a path at all)."""
    found = rules.CONTROL.search(value)
    if found is None:
        return None
    return (f"the path contains the control character {found.group()!r} at position "
            f"{found.start() + 1}; name the file with a plain path, like scripts/web.sh")


_EMPTY_SCRIPT = ("is empty: the build would change nothing in the base image; write the "
                 "commands that configure it")
_BASE_EXAMPLE = (" (for example ssm_parameter: /aws/service/ami-amazon-linux-latest/"
                 "al2023-ami-kernel-6.1-x86_64)")


def _no_assets(directory: str) -> tuple[()]:
    raise LookupError("build.files cannot be read here (no recipe directory)")


def parse_recipe(raw: Any, *, where: str, read_file: FileReader,
                 problems: list[Problem], list_assets: AssetLister = _no_assets
                 ) -> Recipe | None:
    """Validate one parsed recipe; append its problems; return it only if it has none.

    ``list_assets`` lists the files of a build.files directory (core/assets.py)."""
    fields = Fields(where, problems)
    before = len(problems)
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else describe(raw)
        fields.add(None, f"the top level must be a mapping of recipe fields "
                         f"({', '.join(TOP_KEYS)}), got {got}")
        return None
    fields.known_keys(raw, "", TOP_KEYS)
    name = fields.string(raw, "name", required=True, rule=rules.check_recipe_name)
    description = fields.string(raw, "description", max_len=rules.DESCRIPTION_MAX,
                                rule=rules.check_text)
    base = _base(fields, raw)
    build, script, files = _build(fields, raw, read_file)
    assets: tuple[Asset, ...] = ()
    if isinstance(raw.get("build"), dict):
        build, assets = _build_assets(fields, raw["build"], build, list_assets)
    image = image_section(fields, raw, name)
    retention = retention_section(fields, raw)
    release = release_section(fields, raw)
    test, test_files = parse_test(fields, raw, read_file)
    if len(problems) > before or name is None:
        return None
    recipe = Recipe(name=name, description=description, base=base, build=build, image=image,
                    retention=retention, script=script, files={**files, **test_files},
                    source=where, release=release, test=test, assets=assets)
    _check_user_data(fields, recipe)
    if recipe.test is not None:
        _check_test_user_data(fields, recipe)
    return recipe if len(problems) == before else None


def _base(fields: Fields, raw: dict[str, Any]) -> BaseSpec:
    base = fields.section(raw, "base", required=True, example=_BASE_EXAMPLE)
    if not isinstance(raw.get("base"), dict):
        return BaseSpec()  # missing or not a mapping: already reported
    fields.known_keys(base, "base", BASE_KEYS)
    given = [k for k in BASE_KEYS if base.get(k) is not None]
    if len(given) > 1:
        fields.add("base", "set only one of base.ssm_parameter, base.filter and "
                   "base.image_id; found " + " and ".join("base." + k for k in given))
        return BaseSpec()
    if not given:
        fields.add("base", "set base.ssm_parameter (an SSM parameter holding the newest AMI "
                   "id, like /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-"
                   "x86_64), base.filter (owners, name glob and architecture) or "
                   "base.image_id (one pinned AMI, like ami-0123456789abcdef0)")
        return BaseSpec()
    if "image_id" in given:
        return BaseSpec(image_id=fields.string(base, "image_id", "base",
                                               rule=rules.check_image_id))
    if "ssm_parameter" in given:
        return BaseSpec(ssm_parameter=fields.string(base, "ssm_parameter", "base",
                                                    rule=rules.check_ssm_parameter))
    flt = fields.section(base, "filter", "base")
    if not flt:
        if base.get("filter") == {}:
            fields.add("base.filter", "is empty; it needs at least owners and name")
        return BaseSpec()
    fields.known_keys(flt, "base.filter", FILTER_KEYS)
    glob = fields.string(flt, "name", "base.filter", required=True,
                         rule=rules.check_name_glob)
    owners = fields.string_list(flt, "owners", "base.filter", rule=rules.check_owner,
                                accept_digits=12)
    if flt.get("owners") is None or owners == () and flt.get("owners") == []:
        fields.add("base.filter.owners",
                   f"{_glob(glob)} has no owners: a glob over everyone's public "
                   "images is how people got crypto-miners baked into their images; add "
                   "owners: [amazon] or the 12-digit account id that publishes the base")
    arch = fields.string(flt, "architecture", "base.filter",
                         rule=one_of("architecture", rules.ARCHITECTURES))
    return BaseSpec(owners=owners or (), name=glob, architecture=arch)


def _build_assets(fields: Fields, build: dict[str, Any], spec: BuildSpec,
                  list_assets: AssetLister) -> tuple[BuildSpec, tuple[Asset, ...]]:
    """build.files and build.instance_profile (core/assets.py)."""
    dirs, assets = parse_build_files(fields, build, list_assets)
    profile = parse_instance_profile(fields, build)
    if spec.cloudformation is not None:
        for key, given in (("files", dirs), ("instance_profile", profile)):
            if given:
                fields.add(f"build.{key}", "does not apply to a build.cloudformation recipe: "
                           "the build template makes the instance itself; set it in the "
                           "template, or remove it here")
    return replace(spec, files=dirs, instance_profile=profile), assets


def _glob(glob: str | None) -> str:
    return f"the name glob {glob!r}" if glob else "the filter"


def _build(fields: Fields, raw: dict[str, Any], read_file: FileReader
           ) -> tuple[BuildSpec, str, dict[str, bytes]]:
    build = fields.section(raw, "build", required=True,
                           example=" (at least build.user_data: scripts/NAME.sh)")
    fields.known_keys(build, "build", BUILD_KEYS)
    platform = cast(Platform, fields.string(build, "platform", "build", default="linux",
                                            rule=one_of("platform", rules.PLATFORMS)))
    key, path, script, files = (_script(fields, build, read_file)
                                if isinstance(raw.get("build"), dict) else (None, None, "", {}))
    instance_types = fields.string_list(build, "instance_types", "build",
                                        rule=rules.check_instance_type)
    if instance_types == () and build.get("instance_types") == []:
        fields.add("build.instance_types", "is empty; list at least one instance type, or "
                   "leave it out for the default")
    groups = fields.string_list(build, "security_group_ids", "build",
                                rule=rules.check_security_group_id) or ()
    if len(groups) > rules.SECURITY_GROUPS_MAX:
        fields.add("build.security_group_ids",
                   f"lists {len(groups)} groups; EC2 attaches at most "
                   f"{rules.SECURITY_GROUPS_MAX} to an instance's network interface: merge "
                   "their rules into fewer groups")
    tags = tags_section(fields, build, "build")
    spec = BuildSpec(
        platform=platform,
        user_data_file=path if key == "user_data" else None,
        cloudformation=path if key == "cloudformation" else None,
        instance_types=instance_types or DEFAULT_INSTANCE_TYPES[platform],
        subnet_id=fields.string(build, "subnet_id", "build", rule=rules.check_subnet_id),
        security_group_ids=groups,
        timeout_minutes=count(fields.integer(build, "timeout_minutes", "build", low=5,
                                              high=720,
                                              default=DEFAULT_TIMEOUT_MINUTES[platform])),
        retries=count(fields.integer(build, "retries", "build", low=0, high=5, default=1)),
        retry_failed=count(fields.integer(build, "retry_failed", "build", low=0, high=10,
                                           default=DEFAULT_RETRY_FAILED)),
        volume_size_gb=fields.integer(build, "volume_size_gb", "build", low=8, high=16384,
                                      default=None),
        tags=tags,
        associate_public_ip=fields.boolean(build, "associate_public_ip", "build"),
        parameters=parameters_section(fields, build),
    )
    return spec, script, files


def _script(fields: Fields, build: dict[str, Any], read_file: FileReader
            ) -> tuple[str | None, str | None, str, dict[str, bytes]]:
    """Which script key is used, its file path, the script text, and the files read."""
    given = [k for k in SCRIPT_KEYS if build.get(k) is not None]
    if not given:
        fields.add("build", "no script: set build.user_data to a script file beside the "
                   "recipe (like scripts/web.sh) or build.script to the script text")
        return None, None, "", {}
    if len(given) > 1:
        fields.add("build", f"set only one of {any_of(SCRIPT_KEYS)}; found "
                   + " and ".join("build." + k for k in given))
        return None, None, "", {}
    key = given[0]
    if key == "script":
        inline = fields.string(build, "script", "build")
        if inline is None:
            return None, None, "", {}
        if "\x00" in inline:
            fields.add("build.script", "contains a NUL character; a script must be text")
            return None, None, "", {}
        if not inline.strip():
            fields.add("build.script", _EMPTY_SCRIPT)
            return None, None, "", {}
        return key, None, inline, {}
    path = fields.string(build, key, "build", max_len=PATH_MAX, rule=_check_path_text)
    if path is None:
        return None, None, "", {}
    if _ABSOLUTE.match(path):
        fields.add(f"build.{key}", f"{path!r} is an absolute path; write it relative to the "
                   "recipe file (like scripts/web.sh) so the recipe hashes the same anywhere")
        return None, None, "", {}
    try:
        data = read_file(path)
    except LookupError as err:
        fields.add(f"build.{key}", str(err.args[0]))
        return None, None, "", {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        fields.add(f"build.{key}", f"{path} is not UTF-8 text; save it as UTF-8")
        return None, None, "", {}
    if "\x00" in text:
        fields.add(f"build.{key}", f"{path} contains NUL bytes; it must be a text file")
        return None, None, "", {}
    # Scripts run with LF endings (bash chokes on CR) and without a byte-order mark (a
    # BOM in front of #! hides the shebang); the raw bytes are kept, and hashed, as read.
    script = ("" if key == "cloudformation"
              else text.removeprefix("\ufeff").replace("\r\n", "\n"))
    if key == "user_data" and not script.strip():
        fields.add("build.user_data", f"{path} {_EMPTY_SCRIPT}")
        return None, None, "", {}
    return key, path, script, {path: data}


def _check_user_data(fields: Fields, recipe: Recipe) -> None:
    """Checks that need the whole recipe: the wrapped user data must fit EC2's limit."""
    if recipe.build.cloudformation is not None:
        return
    field = "build.user_data" if recipe.build.user_data_file else "build.script"
    # With build.files the wrapper carries one presigned URL (set at launch): room for it.
    placeholder = "x" * ASSETS_URL_ROOM if recipe.assets else None
    try:
        size = user_data_size(recipe.user_data(placeholder))
    except ValueError as err:
        fields.add(field, str(err))
        return
    if size > USER_DATA_LIMIT:
        fields.add(field, f"the wrapped user data is {size} bytes, over EC2's limit of "
                   f"{USER_DATA_LIMIT} bytes; move the bulk of the work into a script in a "
                   "build.files directory (the builder fetches those, and they do not count "
                   "against the limit) or into a package, and keep this script a short "
                   "bootstrap that runs it")


def _check_test_user_data(fields: Fields, recipe: Recipe) -> None:
    """The wrapped test script must fit EC2's user-data limit too."""
    field = "test.user_data" if recipe.test and recipe.test.user_data_file else "test.script"
    try:
        size = user_data_size(recipe.test_user_data())
    except ValueError as err:
        fields.add(field, str(err))
        return
    if size > USER_DATA_LIMIT:
        fields.add(field, f"the wrapped test script is {size} bytes, over EC2's limit of "
                   f"{USER_DATA_LIMIT} bytes; keep the test a short script")


def recipe_from_document(doc: Any) -> Recipe:
    """A Recipe from :meth:`Recipe.to_document` output; RecipeInvalid if it is not one."""
    where = doc.get("source") if isinstance(doc, dict) else None
    where = where if isinstance(where, str) else "<document>"
    problems: list[Problem] = []
    files: dict[str, bytes] = {}
    list_assets, bad_assets = document_lister(doc.get("assets") if isinstance(doc, dict)
                                              else None)
    if bad_assets:
        problems.append(Problem(where, "assets", bad_assets))
    if isinstance(doc, dict):
        fmt = doc.get("format", DOCUMENT_FORMAT)
        if not isinstance(fmt, int) or fmt > DOCUMENT_FORMAT:
            problems.append(Problem(where, "format", f"document format {fmt!r} is newer than "
                                    f"this amiforge understands ({DOCUMENT_FORMAT}); upgrade"))
        raw_files = doc.get("files") or {}
        if not isinstance(raw_files, dict):
            problems.append(Problem(where, "files", "must be a mapping of path: base64"))
            raw_files = {}
        for path, encoded in raw_files.items():
            try:
                files[str(path)] = base64.b64decode(str(encoded), validate=True)
            except (binascii.Error, ValueError):
                problems.append(Problem(where, f"files.{path}", "is not valid base64"))

    def read_file(path: str) -> bytes:
        if path not in files:
            raise LookupError(f"file {path!r} is not in the document's files")
        return files[path]

    spec = ({k: v for k, v in doc.items() if k in TOP_KEYS or k not in DOCUMENT_KEYS}
            if isinstance(doc, dict) else doc)
    recipe = parse_recipe(spec, where=where, read_file=read_file, problems=problems,
                          list_assets=list_assets)
    if problems or recipe is None:
        raise RecipeInvalid(problems)
    return recipe
