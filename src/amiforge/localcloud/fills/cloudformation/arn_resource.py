"""What moto's CloudFormation resource map asks of a resource type the local cloud adds
(:mod:`.missing_types`): its type and name property, an ``Arn`` attribute for
``!GetAtt``, and that it exists once made. Each type adds its physical id and its
create, update and delete."""

from __future__ import annotations

from typing import ClassVar


class ArnResource:
    RESOURCE_TYPE: ClassVar[str]
    NAME_TYPE: ClassVar[str] = ""  # the property that names it ("" if AWS names it)
    arn: str

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.RESOURCE_TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_TYPE

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Arn":
            return self.arn
        raise UnformattedGetAttTemplateException()

    def is_created(self) -> bool:
        return True
