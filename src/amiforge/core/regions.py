"""The AWS region names amiforge accepts in a recipe.

A name that merely looks like a region (``zz-fake-9``) passed validation and then broke
a build's failure path half way, so ``image.regions`` is checked against the regions
that exist. The core imports no botocore, so the list is written out here;
``tests/unit/core/test_regions.py`` holds it against botocore's bundled endpoint and
partition data, so a botocore that knows a new region fails that test until the region
is added here. Every partition is listed (commercial, China, GovCloud, ISO, sovereign):
whether a region is enabled in an account is for AWS to say, at build time.
"""

from __future__ import annotations

REGIONS = frozenset({
    # aws
    "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2",
    "ap-northeast-3", "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2",
    "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
    "ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1",
    "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1",
    "me-south-1", "me-west-1", "mx-central-1", "sa-east-1", "sa-west-1", "us-east-1",
    "us-east-2", "us-west-1", "us-west-2",
    # aws-cn
    "cn-north-1", "cn-northwest-1",
    # aws-us-gov
    "us-gov-east-1", "us-gov-west-1",
    # aws-iso, aws-iso-b, aws-iso-e, aws-iso-f
    "us-iso-east-1", "us-iso-west-1", "us-isob-east-1", "us-isob-west-1", "eu-isoe-west-1",
    "us-isof-east-1", "us-isof-south-1",
    # aws-eusc
    "eusc-de-east-1",
})
