"""Loading and validating recipes: every refusal asserts the exact Problem it produces."""

from __future__ import annotations

from pathlib import Path

import pytest

from amiforge.core.parse import recipe_from_document
from amiforge.core.recipes import load_recipe, load_recipes
from amiforge.core.userdata import wrap
from amiforge.errors import RecipeInvalid

from ..conftest import AL2023, SCRIPT, VALID, RecipeDir

CRYPTO = ("the name glob 'al2023-ami-*' has no owners: a glob over everyone's public images "
          "is how people got crypto-miners baked into their images; add owners: [amazon] or "
          "the 12-digit account id that publishes the base")
RECIPE_NAME_RULE = ("is not a valid recipe name: use 1-40 lowercase letters, digits and "
                    "hyphens, starting with a letter or digit (it becomes part of the SSM "
                    "parameter /amiforge/<recipe>/latest and of Step Functions execution names)")


# --- what a valid recipe becomes -------------------------------------------------------

def test_minimal_recipe_gets_linux_defaults(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    [recipe] = recipe_dir.load()
    assert recipe.name == "web"
    assert recipe.base.ssm_parameter == AL2023
    assert recipe.script == SCRIPT
    assert recipe.files == {"scripts/web.sh": SCRIPT.encode()}
    assert recipe.build.platform == "linux"
    assert recipe.build.user_data_file == "scripts/web.sh"
    assert recipe.build.instance_types == ("t3.small",)
    assert recipe.build.timeout_minutes == 45
    assert recipe.build.retries == 1
    assert recipe.build.volume_size_gb is None
    assert recipe.image.name == "{recipe}-{date}-{short_hash}"
    assert recipe.image.regions == () and recipe.image.share_with == ()
    assert recipe.retention.keep == 5 and recipe.retention.max_age_days == 90
    assert recipe.source == str(recipe_dir.root / "web.yaml")


def test_windows_defaults(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(build={"platform": "windows", "script": "Write-Output hi"}))
    [recipe] = recipe_dir.load()
    assert recipe.build.instance_types == ("t3.medium",)
    assert recipe.build.timeout_minutes == 90
    assert recipe.script == "Write-Output hi"
    assert recipe.files == {}


def test_full_recipe_reads_every_field(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(
        base={"filter": {"owners": ["amazon", 111122223333], "name": "al2023-ami-*",
                         "architecture": "arm64"}},
        build={"user_data": "scripts/web.sh", "instance_types": ["t4g.small", "t4g.medium"],
               "subnet_id": "subnet-0123456789abcdef0",
               "security_group_ids": ["sg-0123456789abcdef0"], "timeout_minutes": 60,
               "retries": 0, "volume_size_gb": 20},
        image={"name": "web-{date}", "description": "web image", "tags": {"team": "web"},
               "regions": ["eu-west-1"], "share_with": ["012345678901"],
               "kms_key_id": "alias/amiforge", "deprecate_after_days": 180},
        retention={"keep": 2, "max_age_days": None},
    ))
    [recipe] = recipe_dir.load()
    assert recipe.base.owners == ("amazon", "111122223333")  # unquoted account id accepted
    assert recipe.base.name == "al2023-ami-*" and recipe.base.architecture == "arm64"
    assert recipe.build.instance_types == ("t4g.small", "t4g.medium")
    assert recipe.build.subnet_id == "subnet-0123456789abcdef0"
    assert recipe.build.security_group_ids == ("sg-0123456789abcdef0",)
    assert (recipe.build.timeout_minutes, recipe.build.retries) == (60, 0)
    assert recipe.build.volume_size_gb == 20
    assert recipe.image.tags == {"team": "web"}
    assert recipe.image.regions == ("eu-west-1",)
    assert recipe.image.share_with == ("012345678901",)
    assert recipe.image.kms_key_id == "alias/amiforge"
    assert recipe.image.deprecate_after_days == 180
    # An explicit null means "no age limit"; absent means the default of 90.
    assert recipe.retention.keep == 2 and recipe.retention.max_age_days is None


@pytest.mark.parametrize("key", [
    "alias/amiforge",
    "1234abcd-12ab-34cd-56ef-1234567890ab",
    "mrk-1234abcd12ab34cd56ef1234567890ab",
    "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "arn:aws:kms:eu-west-1:111122223333:alias/amiforge",
])
def test_kms_key_forms_accepted(recipe_dir: RecipeDir, key: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(image={"kms_key_id": key}))
    assert recipe_dir.load()[0].image.kms_key_id == key


# --- directories and files -------------------------------------------------------------

def test_directory_loads_yaml_and_yml_sorted_and_ignores_other_files(
        recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(name="zeta"), filename="z.yaml")
    recipe_dir.recipe(recipe_dir.valid(name="alpha"), filename="a.yml")
    recipe_dir.write("README.md", "not a recipe")
    recipe_dir.write("notes.txt", "name: [")
    recipe_dir.write("nested/ignored.yaml", "not: [valid")
    assert [r.name for r in recipe_dir.load()] == ["alpha", "zeta"]


def test_load_recipe_reads_one_file(recipe_dir: RecipeDir) -> None:
    path = recipe_dir.recipe(recipe_dir.valid())
    assert load_recipe(path).name == "web"


def test_load_recipe_refuses_a_directory(recipe_dir: RecipeDir) -> None:
    with pytest.raises(RecipeInvalid) as info:
        load_recipe(recipe_dir.root)
    [problem] = info.value.problems
    assert (problem.where, problem.field) == (str(recipe_dir.root), None)
    assert problem.message == ("is a directory; name one recipe file (or use load_recipes "
                               "for a directory)")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(RecipeInvalid) as info:
        load_recipes(tmp_path / "nope")
    [problem] = info.value.problems
    assert str(problem) == f"{tmp_path / 'nope'}: no such file or directory"


def test_empty_directory(recipe_dir: RecipeDir) -> None:
    assert recipe_dir.problems() == [
        (".", None, "has no *.yaml or *.yml recipe files directly in it")]


def test_problems_from_every_file_are_collected(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(name="a", build={"script": "x", "retries": 9}),
                      filename="a.yaml")
    recipe_dir.recipe(recipe_dir.valid(name="b", nmae="typo"), filename="b.yaml")
    recipe_dir.recipe(recipe_dir.valid(name="c"), filename="c.yaml")
    assert recipe_dir.problems() == [
        ("a.yaml", "build.retries", "is 9; use a whole number from 0 to 5"),
        ("b.yaml", "nmae", "unknown key; did you mean 'name'?"),
    ]


def test_duplicate_recipe_names_name_both_files(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(), filename="a.yaml")
    recipe_dir.recipe(recipe_dir.valid(), filename="b.yaml")
    first = recipe_dir.root / "a.yaml"
    assert recipe_dir.problems() == [
        ("b.yaml", "name", f"recipe name 'web' is also used by {first}; every recipe needs "
         "its own name (it keys the catalog and /amiforge/<recipe>/latest)")]


# --- malformed input never becomes a traceback -----------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    ("name: web\n base: [\n", "is not valid YAML: mapping values are not allowed here at "
     "line 2, column 6"),
    ("name: web\nname: web2\n", "is not valid YAML: duplicate key 'name' at line 2, column 1; "
     "YAML would silently keep only the last one; remove or rename one"),
    ("- web\n", "the top level must be a mapping of recipe fields (name, description, base, "
     "build, image, retention, release, test), got a list"),
    ("just text\n", "the top level must be a mapping of recipe fields (name, description, "
     "base, build, image, retention, release, test), got 'just text'"),
    ("", "the top level must be a mapping of recipe fields (name, description, base, build, "
     "image, retention, release, test), got an empty file"),
])
def test_malformed_files(recipe_dir: RecipeDir, text: str, message: str) -> None:
    recipe_dir.write("web.yaml", text)
    assert recipe_dir.problems() == [("web.yaml", None, message)]


def test_file_that_is_not_utf8(recipe_dir: RecipeDir) -> None:
    recipe_dir.write("web.yaml", b"name: \xff\xfe\n")
    assert recipe_dir.problems() == [("web.yaml", None, "is not UTF-8 text; save it as UTF-8")]


@pytest.mark.parametrize(("sections", "field", "message"), [
    ({"name": 7}, "name", "must be a string, got the number 7"),
    ({"base": "ami-123"}, "base", "must be a mapping of fields, got 'ami-123' (for example "
     f"ssm_parameter: {AL2023})"),
    ({"build": ["x"]}, "build", "must be a mapping of fields, got a list (at least "
     "build.user_data: scripts/NAME.sh)"),
    ({"image": {"regions": "eu-west-1"}}, "image.regions",
     "must be a list, got 'eu-west-1'; write [eu-west-1]"),
    ({"image": {"tags": ["team"]}}, "image.tags", "must be a mapping of key: value, got a list"),
    ({"image": {"tags": {"cost-center": 42}}}, "image.tags",
     "tag 'cost-center' has the number 42; tag keys and values must be strings: quote numbers "
     "and true/false, like '42'"),
    ({"retention": {"keep": "5"}}, "retention.keep", "must be a whole number, got '5'"),
    ({"retention": {"keep": 2.5}}, "retention.keep", "must be a whole number, got the number 2.5"),
    ({"build": {"script": "x", "retries": True}}, "build.retries",
     "must be a whole number, got true"),
    ({"build": {"script": "x", "instance_types": [3]}}, "build.instance_types[0]",
     "must be a string, got the number 3"),
    ({"image": {"share_with": [1234], "kms_key_id": "alias/k"}}, "image.share_with[0]",
     "must be a string, got the number 1234; quote account ids, like '012345678901'"),
])
def test_wrong_types(recipe_dir: RecipeDir, sections: dict, field: str, message: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(**sections))
    assert recipe_dir.problems() == [("web.yaml", field, message)]


def test_missing_required_sections(recipe_dir: RecipeDir) -> None:
    recipe_dir.write("web.yaml", "description: nothing else\n")
    assert recipe_dir.problems() == [
        ("web.yaml", "name", "is required"),
        ("web.yaml", "base", f"is required (for example ssm_parameter: {AL2023})"),
        ("web.yaml", "build", "is required (at least build.user_data: scripts/NAME.sh)"),
    ]


# --- unknown keys ----------------------------------------------------------------------

@pytest.mark.parametrize(("sections", "field", "message"), [
    ({"descripton": "x"}, "descripton", "unknown key; did you mean 'description'?"),
    ({"build": {"user_data": "scripts/web.sh", "instance_type": ["t3.small"]}},
     "build.instance_type", "unknown key; did you mean 'instance_types'?"),
    ({"base": {"ssm_parameter": AL2023, "ssm_paramter": "x"}}, "base.ssm_paramter",
     "unknown key; did you mean 'ssm_parameter'?"),
    ({"base": {"filter": {"owners": ["amazon"], "name": "x*", "arch": "x86_64"}}},
     "base.filter.arch", "unknown key; base.filter takes: owners, name, architecture"),
    ({"image": {"share": ["111122223333"]}}, "image.share",
     "unknown key; did you mean 'share_with'?"),
    ({"retention": {"days": 3}}, "retention.days",
     "unknown key; retention takes: keep, max_age_days"),
    ({"owner": "me"}, "owner", "unknown key; a recipe takes: name, description, base, build, "
     "image, retention, release, test"),
])
def test_unknown_keys_suggest(recipe_dir: RecipeDir, sections: dict, field: str,
                              message: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(**sections))
    assert recipe_dir.problems() == [("web.yaml", field, message)]


# --- base ------------------------------------------------------------------------------

def test_filter_glob_without_owners_is_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(base={"filter": {"name": "al2023-ami-*"}}))
    assert recipe_dir.problems() == [("web.yaml", "base.filter.owners", CRYPTO)]


def test_filter_with_empty_owners_is_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(base={"filter": {"name": "al2023-ami-*", "owners": []}}))
    assert recipe_dir.problems() == [("web.yaml", "base.filter.owners", CRYPTO)]


def test_base_needs_exactly_one_source(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(base={
        "ssm_parameter": AL2023, "filter": {"owners": ["amazon"], "name": "x*"}}))
    assert recipe_dir.problems() == [
        ("web.yaml", "base", "set only one of base.ssm_parameter, base.filter and "
         "base.image_id; found base.ssm_parameter and base.filter")]
    recipe_dir.recipe(recipe_dir.valid(base={}))
    assert recipe_dir.problems() == [
        ("web.yaml", "base", "set base.ssm_parameter (an SSM parameter holding the newest AMI "
         f"id, like {AL2023}), base.filter (owners, name glob and architecture) or "
         "base.image_id (one pinned AMI, like ami-0123456789abcdef0)")]


@pytest.mark.parametrize(("base", "field", "message"), [
    ({"filter": {"owners": ["everyone"], "name": "x*"}}, "base.filter.owners[0]",
     "'everyone' is not an image owner: use an account id (12 digits, quoted) or one of "
     "amazon, aws-marketplace, self, aws-backup-vault"),
    ({"filter": {"owners": ["amazon"], "name": "x*", "architecture": "amd64"}},
     "base.filter.architecture",
     "'amd64' is not a valid architecture: use x86_64 or arm64 or i386 or x86_64_mac or "
     "arm64_mac"),
    ({"filter": {"owners": ["amazon"]}}, "base.filter.name", "is required"),
    ({"filter": {}}, "base.filter", "is empty; it needs at least owners and name"),
    ({"ssm_parameter": "not a path!"}, "base.ssm_parameter",
     "'not a path!' is not an SSM parameter name: expected a path of letters, digits and "
     "_ . - /, like /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"),
])
def test_base_values(recipe_dir: RecipeDir, base: dict, field: str, message: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(base=base))
    assert recipe_dir.problems() == [("web.yaml", field, message)]


# --- build -----------------------------------------------------------------------------

def test_missing_user_data_file_names_the_path_looked_for(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(build={"user_data": "scripts/missing.sh"}))
    looked = recipe_dir.root / "scripts" / "missing.sh"
    assert recipe_dir.problems() == [
        ("web.yaml", "build.user_data", f"file not found: looked for {looked}")]


def test_user_data_that_is_a_directory(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(build={"user_data": "scripts"}))
    assert recipe_dir.problems() == [
        ("web.yaml", "build.user_data",
         f"{recipe_dir.root / 'scripts'} is a directory; name the script file")]


def test_user_data_must_be_relative(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(build={"user_data": "/etc/passwd"}))
    assert recipe_dir.problems() == [
        ("web.yaml", "build.user_data", "'/etc/passwd' is an absolute path; write it relative "
         "to the recipe file (like scripts/web.sh) so the recipe hashes the same anywhere")]


def test_user_data_must_be_utf8(recipe_dir: RecipeDir) -> None:
    recipe_dir.write("scripts/bin.sh", b"\xff\xfe\x00")
    recipe_dir.recipe(recipe_dir.valid(build={"user_data": "scripts/bin.sh"}), script=None)
    assert recipe_dir.problems() == [
        ("web.yaml", "build.user_data", "scripts/bin.sh is not UTF-8 text; save it as UTF-8")]


def test_user_data_path_is_relative_to_the_recipe_file(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(build={"user_data": "shared/setup.sh"}),
                      filename="recipes/web.yaml", script=None)
    recipe_dir.write("recipes/shared/setup.sh", "echo shared\n")
    [recipe] = load_recipes(recipe_dir.root / "recipes")
    assert recipe.files == {"shared/setup.sh": b"echo shared\n"}
    assert recipe.script == "echo shared\n"


def test_crlf_script_is_run_with_lf(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(), script="echo a\r\necho b\r\n")
    [recipe] = recipe_dir.load()
    assert recipe.script == "echo a\necho b\n"
    assert recipe.files["scripts/web.sh"] == b"echo a\r\necho b\r\n"  # raw bytes kept


@pytest.mark.parametrize(("build", "message"), [
    ({"platform": "linux"}, "no script: set build.user_data to a script file beside the "
     "recipe (like scripts/web.sh) or build.script to the script text"),
    ({"user_data": "scripts/web.sh", "script": "echo hi"},
     "set only one of build.user_data, build.script and build.cloudformation; found "
     "build.user_data and build.script"),
    ({"script": "echo hi", "cloudformation": "stack.yaml"},
     "set only one of build.user_data, build.script and build.cloudformation; found "
     "build.script and build.cloudformation"),
])
def test_exactly_one_script_source(recipe_dir: RecipeDir, build: dict, message: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(build=build))
    assert recipe_dir.problems() == [("web.yaml", "build", message)]


@pytest.mark.parametrize(("build", "field", "message"), [
    ({"platform": "macos"}, "build.platform", "'macos' is not a valid platform: use linux or "
     "windows"),
    ({"instance_types": ["t3small"]}, "build.instance_types[0]",
     "'t3small' is not an EC2 instance type: write family.size, like t3.small"),
    ({"instance_types": ["t3.small", "t3.small"]}, "build.instance_types[1]",
     "'t3.small' is listed twice"),
    ({"instance_types": []}, "build.instance_types",
     "is empty; list at least one instance type, or leave it out for the default"),
    ({"subnet_id": "subnet-xyz"}, "build.subnet_id",
     "'subnet-xyz' is not a subnet id: expected subnet- and 8 or 17 hex digits"),
    ({"security_group_ids": ["web-sg"]}, "build.security_group_ids[0]",
     "'web-sg' is not a security group id: expected sg- and 8 or 17 hex digits (group names "
     "are not accepted)"),
    ({"retries": -1}, "build.retries", "is -1; use a whole number from 0 to 5"),
    ({"retries": 6}, "build.retries", "is 6; use a whole number from 0 to 5"),
    ({"timeout_minutes": 4}, "build.timeout_minutes", "is 4; use a whole number from 5 to 720"),
    ({"timeout_minutes": 721}, "build.timeout_minutes",
     "is 721; use a whole number from 5 to 720"),
    ({"volume_size_gb": 4}, "build.volume_size_gb", "is 4; use a whole number from 8 to 16384"),
])
def test_build_values(recipe_dir: RecipeDir, build: dict, field: str, message: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(build={"user_data": "scripts/web.sh", **build}))
    assert recipe_dir.problems() == [("web.yaml", field, message)]


@pytest.mark.parametrize(("field", "value"), [("retries", 0), ("retries", 5),
                                              ("timeout_minutes", 5), ("timeout_minutes", 720)])
def test_build_bounds_are_inclusive(recipe_dir: RecipeDir, field: str, value: int) -> None:
    recipe_dir.recipe(recipe_dir.valid(build={"user_data": "scripts/web.sh", field: value}))
    assert getattr(recipe_dir.load()[0].build, field) == value


def test_user_data_over_16kb_is_refused(recipe_dir: RecipeDir) -> None:
    script = "#!/bin/bash\n" + "echo 'configure one more thing'\n" * 600
    recipe_dir.recipe(recipe_dir.valid(), script=script)
    # The wrapper's size depends on the hash only through its (fixed) length.
    size = len(wrap("linux", script, recipe_name="web", recipe_hash="0" * 64).encode())
    assert size > 16384
    [(where, field, message)] = recipe_dir.problems()
    assert (where, field) == ("web.yaml", "build.user_data")
    assert message == (
        f"the wrapped user data is {size} bytes, over EC2's limit of 16384 bytes; move the "
        "bulk of the work into a script in a build.files directory (the builder fetches "
        "those, and they do not count against the limit) or into a package, and keep this "
        "script a short bootstrap that runs it")


def test_inline_windows_script_cannot_close_the_powershell_block(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(
        build={"platform": "windows", "script": "Write-Output '</powershell>'"}))
    assert recipe_dir.problems() == [
        ("web.yaml", "build.script", "the script contains '</powershell>', which would end "
         "EC2Launch's user data block early; split the word, e.g. '</power' + 'shell>'")]


CFN_TEMPLATE = ("Parameters: {BaseImageId: {Type: AWS::EC2::Image::Id}}\n"
                "Resources: {B: {Type: AWS::EC2::Instance}}\n"
                "Outputs: {InstanceId: {Value: !Ref B}}\n")


def test_cloudformation_template_is_loaded_and_hashed(recipe_dir: RecipeDir) -> None:
    recipe_dir.write("cfn/stack.yaml", CFN_TEMPLATE)
    recipe_dir.recipe(recipe_dir.valid(build={"cloudformation": "cfn/stack.yaml"}), script=None)
    [recipe] = recipe_dir.load()
    assert recipe.build.cloudformation == "cfn/stack.yaml"
    assert recipe.files == {"cfn/stack.yaml": CFN_TEMPLATE.encode()}
    before = recipe.hash
    recipe_dir.write("cfn/stack.yaml", CFN_TEMPLATE + "# changed\n")
    assert recipe_dir.load()[0].hash != before
    assert recipe.builder == "cloudformation"
    assert recipe.cloudformation_template() == CFN_TEMPLATE


# --- names -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Web", "web_1", "-web", "a" * 41, "wéb", ""])
def test_bad_recipe_names(recipe_dir: RecipeDir, name: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(name=name))
    assert recipe_dir.problems() == [("web.yaml", "name", f"{name!r} {RECIPE_NAME_RULE}")]


@pytest.mark.parametrize("name", ["a", "0", "web-2", "a" * 40])
def test_good_recipe_names(recipe_dir: RecipeDir, name: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(name=name, image={"name": "img-{date}"}))
    assert recipe_dir.load()[0].name == name


@pytest.mark.parametrize(("template", "message"), [
    ("{recipe}-{when}", "unknown placeholder {when} in '{recipe}-{when}'; use {recipe}, "
     "{date}, {short_hash}, {build_id} or {date:STRFTIME}"),
    ("{recipe}:{date}", "'{recipe}:{date}' contains ':'; AMI names allow only letters, digits, "
     "spaces and ( ) [ ] . / - ' @ _ besides the placeholders"),
    ("{recipe}-{short_hash}", "'{recipe}-{short_hash}' would give every build of the recipe "
     "the same image name, and AMI names must be unique; include {date} or {build_id}"),
    ("x" * 120 + "{date}", f"'{'x' * 120}{{date}}' renders to at least 135 characters; AMI "
     "names allow 128: shorten the fixed text"),
])
def test_bad_image_name_templates(recipe_dir: RecipeDir, template: str, message: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(image={"name": template}))
    assert recipe_dir.problems() == [("web.yaml", "image.name", message)]


def test_image_name_length_counts_the_real_recipe_name(recipe_dir: RecipeDir) -> None:
    template = "{recipe}-" + "x" * 110 + "-{date}"  # fine for a 1-char name, not for 'web'
    recipe_dir.recipe(recipe_dir.valid(image={"name": template}))
    assert recipe_dir.problems() == [("web.yaml", "image.name", f"{template!r} renders to at "
                                      "least 130 characters; AMI names allow 128: shorten the "
                                      "fixed text")]


@pytest.mark.parametrize(("tags", "message"), [
    ({"aws:team": "x"}, "tag key 'aws:team' starts with 'aws:', which AWS reserves for its "
     "own tags"),
    ({"AWS:team": "x"}, "tag key 'AWS:team' starts with 'aws:', which AWS reserves for its "
     "own tags"),
    ({"amiforge:recipe": "x"}, "tag key 'amiforge:recipe' starts with 'amiforge:', which "
     "amiforge reserves for the tags it sets itself; choose another prefix"),
    ({"k" * 129: "x"}, f"tag key {'k' * 129!r} must be 1-128 characters (it is 129)"),
    ({"team": "v" * 257}, "tag 'team' has a value of 257 characters; AWS allows at most 256"),
    ({f"t{i}": "x" for i in range(41)}, "has 41 tags; at most 40 (EC2 allows 50 per image and "
     "amiforge adds its own)"),
])
def test_bad_tags(recipe_dir: RecipeDir, tags: dict, message: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(image={"tags": tags}))
    assert recipe_dir.problems() == [("web.yaml", "image.tags", message)]


def test_tag_limits_are_inclusive(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(image={"tags": {"k" * 128: "v" * 256}}))
    assert recipe_dir.load()[0].image.tags == {"k" * 128: "v" * 256}


@pytest.mark.parametrize(("image", "field", "message"), [
    ({"regions": ["eu-west"]}, "image.regions[0]",
     "'eu-west' is not an AWS region: expected a region name like eu-west-1 (see "
     "`aws ec2 describe-regions --all-regions`)"),
    ({"regions": ["EU-WEST-1"]}, "image.regions[0]",
     "'EU-WEST-1' is not an AWS region: expected a region name like eu-west-1 (see "
     "`aws ec2 describe-regions --all-regions`)"),
    ({"share_with": ["1234"], "kms_key_id": "alias/k"}, "image.share_with[0]",
     "'1234' is not an AWS account id: expected 12 digits, quoted in YAML so leading zeros "
     "survive, like '012345678901'"),
    ({"kms_key_id": "my-key"}, "image.kms_key_id",
     "'my-key' is not a KMS key: use alias/NAME, a key id (1234abcd-12ab-34cd-56ef-1234567890ab"
     " or mrk-...), or a key or alias ARN"),
    ({"description": "d" * 256}, "image.description",
     "is 256 characters; at most 255 are allowed"),
    ({"deprecate_after_days": 0}, "image.deprecate_after_days",
     "is 0; use a whole number from 1 to 3650"),
])
def test_bad_image_values(recipe_dir: RecipeDir, image: dict, field: str, message: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(image=image))
    assert recipe_dir.problems() == [("web.yaml", field, message)]


def test_sharing_without_a_customer_managed_key_is_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(image={"share_with": ["111122223333", "444455556666"]}))
    assert recipe_dir.problems() == [(
        "web.yaml", "image.share_with",
        "sharing an image needs a customer-managed KMS key: amiforge always encrypts volumes, "
        "and images encrypted with the AWS-managed default key cannot be shared; set "
        "image.kms_key_id to a key whose policy lets 111122223333, 444455556666 use it")]


def test_sharing_with_the_aws_managed_key_is_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(image={"share_with": ["111122223333"],
                                              "kms_key_id": "alias/aws/ebs"}))
    assert recipe_dir.problems() == [(
        "web.yaml", "image.kms_key_id",
        "'alias/aws/ebs' is an AWS-managed key, and images encrypted with it cannot be shared; "
        "use a customer-managed key (alias/NAME or key ARN)")]


# --- retention -------------------------------------------------------------------------

def test_keep_must_be_at_least_one(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(retention={"keep": 0}))
    assert recipe_dir.problems() == [
        ("web.yaml", "retention.keep", "is 0; use a whole number of at least 1")]


def test_max_age_days_must_be_positive(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(retention={"max_age_days": 0}))
    assert recipe_dir.problems() == [
        ("web.yaml", "retention.max_age_days", "is 0; use a whole number of at least 1")]


def test_byte_order_marks_are_tolerated(recipe_dir: RecipeDir) -> None:
    # Windows editors add them; in front of #! a BOM would hide the shebang.
    recipe_dir.recipe(recipe_dir.valid(), script="\ufeff#!/bin/bash\necho hi\n")
    path = recipe_dir.root / "web.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    [recipe] = recipe_dir.load()
    assert recipe.script == "#!/bin/bash\necho hi\n"


def test_build_retry_failed_defaults_to_two_and_keeps_the_hash(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    (default,) = recipe_dir.load()
    assert default.build.retry_failed == 2
    recipe_dir.recipe(recipe_dir.valid(build={**VALID["build"], "retry_failed": 2}))
    (spelled,) = recipe_dir.load()
    assert spelled.hash == default.hash  # spelling the default out changes nothing
    recipe_dir.recipe(recipe_dir.valid(build={**VALID["build"], "retry_failed": 0}))
    (never,) = recipe_dir.load()
    assert never.build.retry_failed == 0
    assert recipe_from_document(never.to_document()).build.retry_failed == 0


def test_build_retry_failed_out_of_range_is_named(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(build={**VALID["build"], "retry_failed": 11}))
    assert recipe_dir.problems() == [
        ("web.yaml", "build.retry_failed", "is 11; use a whole number from 0 to 10")]
