"""AWS naming rules, checked before anything reaches AWS.

Each ``check_*`` function takes one value and returns ``None`` when AWS would accept it,
or a message saying what is wrong and what a good value looks like. The recipe parser
(:mod:`amiforge.core.parse`) turns those messages into Problems that name the file and
field; keeping the rules here, as plain functions, lets the CLI and the steps reuse them.
"""

from __future__ import annotations

import re

from amiforge.core.regions import REGIONS

RECIPE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
# family[generation][attributes].size: t3.small, m7i-flex.large, u-6tb1.metal, c7gn.16xlarge
INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9-]+")
SUBNET_ID = re.compile(r"subnet-[0-9a-f]{8,17}")
SECURITY_GROUP_ID = re.compile(r"sg-[0-9a-f]{8,17}")
ACCOUNT_ID = re.compile(r"\d{12}")
# us-east-1, eu-west-1, ap-southeast-2, us-gov-west-1, cn-north-1, us-isob-east-1
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_KEY_ID = rf"(?:{_UUID}|mrk-[0-9a-f]{{32}})"
KMS_KEY = re.compile(
    rf"alias/[A-Za-z0-9/_-]{{1,250}}"
    rf"|{_KEY_ID}"
    rf"|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{{12}}:(?:key/{_KEY_ID}|alias/[A-Za-z0-9/_-]{{1,250}})"
)
# The AWS-managed EBS key: usable, but an image encrypted with it cannot be shared.
AWS_MANAGED_KMS = re.compile(r"(?:arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:)?alias/aws/.*")
SSM_PARAMETER = re.compile(r"/?[A-Za-z0-9_.\-/]{1,2047}")
AMI_ID = re.compile(r"ami-(?:[0-9a-f]{8}|[0-9a-f]{17})")
# Base parameters: AWS's public ones, plus what the stack's BaseParameterPrefixes allows
# (each prefix starts and ends with "/"; the template's IAM grants exactly these).
PUBLIC_BASE_PREFIX = "/aws/service/"
BASE_PREFIX = re.compile(r"(?:/[A-Za-z0-9_.-]+)+/")
BASE_PREFIXES_MAX = 3
# Who may own a base image: the keywords EC2 DescribeImages accepts, or an account id.
OWNER_ALIASES = ("amazon", "aws-marketplace", "self", "aws-backup-vault")
ARCHITECTURES = ("x86_64", "arm64", "i386", "x86_64_mac", "arm64_mac")
PLATFORMS = ("linux", "windows")

TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
# EC2 allows 50 tags per resource; amiforge adds its own (amiforge:*, Name) to each.
USER_TAGS_MAX = 40
DESCRIPTION_MAX = 255  # EC2 image descriptions
# EC2 allows 5 security groups per network interface unless the quota was raised.
SECURITY_GROUPS_MAX = 5
# C0 and C1 control characters, DEL and the Unicode line separators: AWS refuses them in names, descriptions and
# tags, or stores them and then fails to answer (an image description with one broke every
# DescribeImages on the local cloud).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_recipe_name(value: str) -> str | None:
    if RECIPE_NAME.fullmatch(value):
        return None
    return (f"{value!r} is not a valid recipe name: use 1-40 lowercase letters, digits and "
            "hyphens, starting with a letter or digit (it becomes part of the SSM parameter "
            "/amiforge/<recipe>/latest and of Step Functions execution names)")


def check_instance_type(value: str) -> str | None:
    if INSTANCE_TYPE.fullmatch(value):
        return None
    return f"{value!r} is not an EC2 instance type: write family.size, like t3.small"


def check_subnet_id(value: str) -> str | None:
    if SUBNET_ID.fullmatch(value):
        return None
    return f"{value!r} is not a subnet id: expected subnet- and 8 or 17 hex digits"


def check_security_group_id(value: str) -> str | None:
    if SECURITY_GROUP_ID.fullmatch(value):
        return None
    return (f"{value!r} is not a security group id: expected sg- and 8 or 17 hex digits "
            "(group names are not accepted)")


def check_account_id(value: str) -> str | None:
    if ACCOUNT_ID.fullmatch(value):
        return None
    return (f"{value!r} is not an AWS account id: expected 12 digits, quoted in YAML so "
            "leading zeros survive, like '012345678901'")


def check_owner(value: str) -> str | None:
    if value in OWNER_ALIASES or ACCOUNT_ID.fullmatch(value):
        return None
    return (f"{value!r} is not an image owner: use an account id (12 digits, quoted) or one "
            f"of {', '.join(OWNER_ALIASES)}")


def check_region(value: str) -> str | None:
    if value in REGIONS:
        return None
    return (f"{value!r} is not an AWS region: expected a region name like eu-west-1 "
            "(see `aws ec2 describe-regions --all-regions`)")


def check_kms_key(value: str) -> str | None:
    if KMS_KEY.fullmatch(value):
        return None
    return (f"{value!r} is not a KMS key: use alias/NAME, a key id "
            "(1234abcd-12ab-34cd-56ef-1234567890ab or mrk-...), or a key or alias ARN")


def check_ssm_parameter(value: str) -> str | None:
    if SSM_PARAMETER.fullmatch(value):
        return None
    return (f"{value!r} is not an SSM parameter name: expected a path of letters, digits "
            "and _ . - /, like /aws/service/ami-amazon-linux-latest/"
            "al2023-ami-kernel-6.1-x86_64")


def check_text(value: str) -> str | None:
    """Free text (descriptions, tags): one line of printable characters."""
    found = CONTROL.search(value)
    if found is None:
        return None
    return (f"contains the control character {found.group()!r} at position "
            f"{found.start() + 1}; AWS refuses control characters (newlines and tabs too): "
            "write it on one line of plain text")


def check_name_glob(value: str) -> str | None:
    if not value.strip():
        return ("is empty; give the base image's name or a glob of it, like "
                "'al2023-ami-2023.*-x86_64'")
    if message := check_text(value):
        return message
    return None


def parse_base_prefixes(text: str | None) -> tuple[str, ...]:
    """The stack's BaseParameterPrefixes ("/a/,/b/") as a tuple; ValueError if malformed."""
    prefixes = tuple(p.strip() for p in (text or "").split(",") if p.strip())
    bad = [p for p in prefixes if not BASE_PREFIX.fullmatch(p)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a parameter path prefix: write it like "
                         "/golden/amis/ (starting and ending with /)")
    if len(prefixes) > BASE_PREFIXES_MAX:
        raise ValueError(f"{len(prefixes)} base parameter prefixes given; at most "
                         f"{BASE_PREFIXES_MAX}")
    return prefixes


def check_base_parameter(name: str, allowed: tuple[str, ...] = ()) -> str | None:
    """None if the stack may read ``name`` as a base image parameter, else why not.

    Detect and Resolve may read only AWS's public ``/aws/service/`` parameters and the
    prefixes the stack allows: a recipe naming ``/prod/db/password`` would otherwise have
    the stack read a secret on the recipe author's behalf.
    """
    full = name if name.startswith("/") else "/" + name
    for prefix in (PUBLIC_BASE_PREFIX, *allowed):
        if full.startswith(prefix):
            return None
    extra = (f" or the stack's BaseParameterPrefixes ({', '.join(allowed)})" if allowed
             else "; to use your own, deploy with -p BaseParameterPrefixes=/your/prefix/ "
                  "(and pass --base-parameter-prefixes to validate)")
    return (f"{name!r} is not under {PUBLIC_BASE_PREFIX}{extra}: amiforge reads a base "
            "parameter only there, so that a recipe cannot read other parameters (secrets) "
            "through the stack")


def is_ami_id(value: object) -> bool:
    return isinstance(value, str) and AMI_ID.fullmatch(value) is not None


def check_image_id(value: str) -> str | None:
    """A pinned base (``base.image_id``, ``build --base``): an AMI id, nothing else."""
    if is_ami_id(value):
        return None
    return (f"{value!r} is not an AMI id: write ami- and 8 or 17 lowercase hex digits, "
            "like ami-0123456789abcdef0")


def check_tag(key: str, value: str) -> str | None:
    if key.lower().startswith("aws:"):
        return f"tag key {key!r} starts with 'aws:', which AWS reserves for its own tags"
    if key.lower().startswith("amiforge:"):
        return (f"tag key {key!r} starts with 'amiforge:', which amiforge reserves for the "
                "tags it sets itself; choose another prefix")
    if not key or len(key) > TAG_KEY_MAX:
        return f"tag key {key!r} must be 1-{TAG_KEY_MAX} characters (it is {len(key)})"
    if len(value) > TAG_VALUE_MAX:
        return (f"tag {key!r} has a value of {len(value)} characters; AWS allows at most "
                f"{TAG_VALUE_MAX}")
    for what, text in (("key", key), ("value", value)):
        if message := check_text(text):
            return f"tag {key!r}: its {what} {message}"
    return None
