"""Launch template version fills: what AWS does with CreateLaunchTemplateVersion and
moto 5.2.5 drops.

* ``SourceVersion``: AWS starts the new version from that version's data and applies the
  request's ``LaunchTemplateData`` over it (the rollout changes only ``ImageId``); moto
  keeps only the request's data. Here the new version is the source's data with the
  request's keys replaced.
* ``ClientToken``: AWS answers a repeated request with the version the token made; moto
  makes another. Here a token is remembered per template.
* **DescribeLaunchTemplates pages.** moto answers the first ``MaxResults`` templates (15
  when absent) and no ``NextToken``, so the sixteenth template of an account is never
  listed: a deletion gate reading every template would miss what it launches. Here the
  answer is paged as AWS pages it: at most ``MaxResults`` (1 to 200; 15 when absent, as
  moto) and a ``NextToken`` while more remain; a token this fill did not give is refused.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from collections.abc import Callable
from typing import Any

from amiforge.localcloud.fills import Fill


def _create_version(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_launch_template_version(self: Any) -> Any:
        from moto.core.responses import ActionResult

        name = self._get_param("LaunchTemplateName")
        template_id = self._get_param("LaunchTemplateId")
        source = self._get_param("SourceVersion")
        token = self._get_param("ClientToken")
        if not source and not token:
            return original(self)
        template = (self.ec2_backend.get_launch_template(template_id) if template_id
                    else self.ec2_backend.get_launch_template_by_name(name))
        tokens: dict[str, Any] = getattr(template, "_amiforge_tokens", None) or {}
        template._amiforge_tokens = tokens
        version = tokens.get(token) if token else None
        if version is None:
            data = dict(self._get_param("LaunchTemplateData", {}) or {})
            if source:
                data = {**copy.deepcopy(template.get_version(source).data), **data}
            self.error_on_dryrun()
            version = template.create_version(data, self._get_param("VersionDescription"))
            if token:
                tokens[token] = version
        return ActionResult({"LaunchTemplateVersion": {
            "CreateTime": version.create_time,
            "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
            "DefaultVersion": template.is_default(version),
            "LaunchTemplateData": version.data, "LaunchTemplateId": template.id,
            "LaunchTemplateName": template.name,
            "VersionDescription": version.description, "VersionNumber": version.number}})

    return create_launch_template_version


DEFAULT_PAGE = 15
MAX_PAGE = 200


def _offset(token: str | None) -> int:
    from moto.ec2.exceptions import InvalidParameterValueError

    if not token:
        return 0
    try:
        found = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeError):
        found = None
    if not isinstance(found, int) or isinstance(found, bool) or found < 0:
        raise InvalidParameterValueError(token)
    return found


def _describe_templates(_original: Callable[..., Any]) -> Callable[..., Any]:
    def describe_launch_templates(self: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.ec2.exceptions import InvalidParameterValueError

        size = self._get_int_param("MaxResults", DEFAULT_PAGE)
        if not 0 < size <= MAX_PAGE:
            raise InvalidParameterValueError(str(size))
        start = _offset(self._get_param("NextToken"))
        self.error_on_dryrun()
        templates = self.ec2_backend.describe_launch_templates(
            template_names=self._get_param("LaunchTemplateNames", []),
            template_ids=self._get_param("LaunchTemplateIds", []),
            filters=self._filters_from_querystring())
        answer: dict[str, Any] = {"LaunchTemplates": [{
            "CreateTime": template.create_time,
            "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
            "DefaultVersionNumber": template.default_version_number,
            "LatestVersionNumber": template.latest_version_number,
            "LaunchTemplateId": template.id, "LaunchTemplateName": template.name,
            "Tags": template.tags} for template in templates[start:start + size]]}
        if start + size < len(templates):
            answer["NextToken"] = base64.urlsafe_b64encode(
                json.dumps(start + size).encode()).decode()
        return ActionResult(answer)

    return describe_launch_templates


FILLS = [
    Fill("ec2.launch-template-pages", "moto.ec2.responses.launch_templates:LaunchTemplates",
         "describe_launch_templates", _describe_templates, "4ecadb74dc23"),
    Fill("ec2.launch-template-source-version",
         "moto.ec2.responses.launch_templates:LaunchTemplates",
         "create_launch_template_version", _create_version, "a42f59b830ad"),
]
