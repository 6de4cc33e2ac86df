"""Load recipes from disk: YAML files with their scripts beside them.

The only I/O in the core: reading a recipe directory (every ``*.yaml``/``*.yml`` directly
in it, sorted) or one file, parsing YAML strictly (duplicate keys are an error, not "last
one wins"), and reading the files recipes reference, relative to the recipe file.
Validation itself lives in :mod:`amiforge.core.parse`.

Every problem in every file is collected before anything is raised, so one run of
``amiforge validate`` lists them all; bad input of any shape ends as a
:class:`~amiforge.errors.RecipeInvalid`, never as a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from amiforge.core import rules
from amiforge.core.assets import walk_assets
from amiforge.core.build_template import declared_parameters, template_problems
from amiforge.core.files import UnsafeFile, read_bounded
from amiforge.core.model import Recipe
from amiforge.core.parse import FileReader, parse_recipe
from amiforge.core.template_parameters import recipe_problems
from amiforge.core.yamlsafe import load_yaml
from amiforge.errors import Problem, RecipeInvalid

RECIPE_SUFFIXES = (".yaml", ".yml")
ITEM_LIMIT = 400 * 1024  # DynamoDB's item size limit
# Room for the recipe store item's other attributes: name, version, hash, git commit,
# timestamps and the build claim (last_build_key, last_build_id, last_base_ami...).
ITEM_OVERHEAD = 2048
# Fields of a user-data build that a CloudFormation build template decides for itself.
# (subnet_id and security_group_ids are passed to the template as SubnetId and
# SecurityGroupIds: core/template_parameters.py.)
CFN_CHOOSES = ("instance_types", "volume_size_gb", "retries", "associate_public_ip")
CFN_CHOOSES_MESSAGE = ("does not apply to a build.cloudformation recipe: the build template "
                       "makes the instance and chooses its type, volumes and addressing, "
                       "and a failed build stack is not relaunched; set it in the template "
                       "(or pass it with build.parameters), or remove it here")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable key: let SafeLoader report it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark,
                    note="YAML would silently keep only the last one; remove or rename one")
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path, problems: list[Problem]) -> tuple[bool, Any]:
    """(ok, parsed document) for one file; on failure a Problem is recorded."""
    where = str(path)
    try:
        text = read_bounded(path.parent, path.name).decode("utf-8")
    except UnsafeFile as err:
        problems.append(Problem(where, None, err.reason))
        return False, None
    except UnicodeDecodeError:
        problems.append(Problem(where, None, "is not UTF-8 text; save it as UTF-8"))
        return False, None
    try:
        return True, load_yaml(text, _StrictLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        note = f"; {err.note}" if err.note else ""
        problems.append(Problem(where, None, f"is not valid YAML: {err.problem}{at}{note}"))
    except yaml.YAMLError as err:
        problems.append(Problem(where, None, f"is not valid YAML: {err}"))
    return False, None


def _file_reader(recipe_file: Path) -> FileReader:
    """Reads files the recipe names: inside its directory, regular, bounded (core.files)."""
    def read(relative: str) -> bytes:
        return read_bounded(recipe_file.parent, relative)
    return read


def _recipe_files(path: Path, problems: list[Problem]) -> list[Path]:
    """The recipe files to load: ``path`` itself, or the *.yaml/*.yml directly in it.

    Directories are skipped; anything else with a recipe suffix is returned, so that a
    FIFO, device or symlink out of the directory is refused by name when it is read.
    """
    if path.is_dir():
        found = sorted(p for p in path.iterdir()
                       if p.suffix in RECIPE_SUFFIXES and not p.is_dir())
        if not found:
            problems.append(Problem(str(path), None,
                                    "has no *.yaml or *.yml recipe files directly in it"))
        return found
    if path.exists() or path.is_symlink():
        return [path]
    problems.append(Problem(str(path), None, "no such file or directory"))
    return []


def _load(path: Path, problems: list[Problem]) -> tuple[str | None, Recipe | None]:
    """(the name the file claims, if any; the recipe if valid)."""
    ok, raw = _read_yaml(path, problems)
    if not ok:
        return None, None
    claimed = raw.get("name") if isinstance(raw, dict) else None
    recipe = parse_recipe(raw, where=str(path), read_file=_file_reader(path), problems=problems,
                          list_assets=lambda directory: walk_assets(path.parent, directory))
    if recipe is not None and recipe.build.cloudformation is not None:
        # Here, on the file as written, not in parse: the published document carries every
        # default, and the stack re-parses it without PyYAML.
        template = recipe.build.cloudformation
        shared = bool(recipe.image.share_with and recipe.image.kms_key_id)
        found = [Problem(str(path), f"build.{name}", CFN_CHOOSES_MESSAGE)
                 for name in CFN_CHOOSES if name in raw["build"]]
        found += [Problem(str(path), "build.cloudformation", message) for message in
                  template_problems(template, recipe.cloudformation_template(), kms_key=shared)]
        if not found:  # the template reads as one: check what the recipe passes it
            declared = declared_parameters(recipe.cloudformation_template())
            found += [Problem(str(path), field, message)
                      for field, message in recipe_problems(recipe, declared)]
        problems.extend(found)
        recipe = None if found else recipe
    elif recipe is not None and (found := [Problem(str(path), field, message) for
                                           field, message in recipe_problems(recipe, {})]):
        problems.extend(found)
        recipe = None
    return (claimed if isinstance(claimed, str) else None), recipe


def base_problems(recipes: list[Recipe], allowed: tuple[str, ...]) -> list[Problem]:
    """A Problem for each recipe whose base parameter the stack may not read."""
    return [Problem(r.source, "base.ssm_parameter", message) for r in recipes
            if r.base.ssm_parameter
            and (message := rules.check_base_parameter(r.base.ssm_parameter, allowed))]


def stored_size(recipe: Recipe) -> int:
    """Bytes of the recipe store's item for ``recipe``: its document as stored (compact
    JSON, as aws/recipe_store writes it) plus room for the item's other attributes."""
    body = json.dumps(recipe.to_document(), sort_keys=True, separators=(",", ":"))
    return len(body.encode("utf-8")) + ITEM_OVERHEAD


def publish_problems(recipes: list[Recipe], allowed: tuple[str, ...]) -> list[Problem]:
    """What stops ``publish`` before its first write: base parameters the stack may not
    read and items over DynamoDB's size limit. Checked for every recipe up front, so a
    publish stores all of its recipes or none."""
    problems = base_problems(recipes, allowed)
    for recipe in recipes:
        size = stored_size(recipe)
        if size > ITEM_LIMIT:
            field = ("build.cloudformation" if recipe.build.cloudformation
                     else "build.user_data" if recipe.build.user_data_file else None)
            problems.append(Problem(
                recipe.source, field,
                f"the published recipe would be {size} bytes, over DynamoDB's item limit of "
                f"{ITEM_LIMIT} bytes (the files it references are stored in it, base64): "
                "make them smaller"))
    return problems


def load_recipes(path: Path, *, base_prefixes: tuple[str, ...] | None = None
                 ) -> list[Recipe]:
    """Every recipe in a directory (or the one in a file); RecipeInvalid lists all problems.

    With ``base_prefixes`` (the stack's BaseParameterPrefixes), a base parameter outside
    ``/aws/service/`` and those prefixes is a problem too.
    """
    path = Path(path)
    problems: list[Problem] = []
    recipes: list[Recipe] = []
    owner: dict[str, Path] = {}
    for recipe_file in _recipe_files(path, problems):
        name, recipe = _load(recipe_file, problems)
        if name is not None and name in owner:
            problems.append(Problem(
                str(recipe_file), "name",
                f"recipe name {name!r} is also used by {owner[name]}; every recipe needs its "
                "own name (it keys the catalog and /amiforge/<recipe>/latest)"))
            continue
        if name is not None:
            owner[name] = recipe_file
        if recipe is not None:
            recipes.append(recipe)
    if base_prefixes is not None:
        problems.extend(base_problems(recipes, base_prefixes))
    if problems:
        raise RecipeInvalid(problems)
    return recipes


def load_recipe(path: Path) -> Recipe:
    """The recipe in one file; RecipeInvalid if it has problems."""
    path = Path(path)
    if path.is_dir():
        raise RecipeInvalid([Problem(str(path), None, "is a directory; name one recipe file "
                                     "(or use load_recipes for a directory)")])
    return load_recipes(path)[0]
