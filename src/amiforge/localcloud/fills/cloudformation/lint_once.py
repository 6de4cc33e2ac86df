"""ValidateTemplate's lint, run once per template text.

moto 5.2.5 answers ``ValidateTemplate`` by running cfn-lint over the whole template
(``CloudFormationBackend.validate_template``) on every call: about 0.4 s for a small
template, 3.7 s for one the size of amiforge's own stack. The build-stack step validates
a recipe's CloudFormation template on every build of it. What cfn-lint finds depends only
on the template's text (and the cfn-lint installed, which does not change while the
local cloud runs), so the findings of the last :data:`KEPT` templates are kept here by
their SHA-256, from this install to the next uninstall. A template with findings is
refused each time, with the same first message.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

KEPT = 32


def wrap_validate_template(original: Callable[[Any, str], list[Any]]
                           ) -> Callable[[Any, str], list[Any]]:
    found: OrderedDict[str, list[Any]] = OrderedDict()
    lock = threading.Lock()

    def validate_template(self: Any, template: str) -> list[Any]:
        key = hashlib.sha256(template.encode("utf-8", "surrogatepass")).hexdigest()
        with lock:
            if key in found:
                found.move_to_end(key)
                return list(found[key])
        findings = original(self, template)
        with lock:
            found[key] = list(findings)
            while len(found) > KEPT:
                found.popitem(last=False)
        return findings

    return validate_template
