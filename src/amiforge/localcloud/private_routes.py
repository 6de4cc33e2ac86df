"""The local cloud's own routes, in front of moto's app: ``/_amiforge/...``.

* ``GET health`` — is this an amiforge local cloud, and where;
* ``POST release-base`` — play a vendor publishing a base AMI (``amiforge local
  release-base`` from another process);
* ``GET faults`` reads the fault injector's counters, ``POST faults`` sets its knobs
  (:mod:`.faults`).
"""

from __future__ import annotations

import difflib
import json
from datetime import datetime
from typing import Any, Protocol

from amiforge.localcloud import faults


class Cloud(Protocol):
    """What the routes need of :class:`~amiforge.localcloud.server.LocalCloud` (a protocol,
    so this module does not import the server that mounts it)."""

    @property
    def region(self) -> str: ...
    @property
    def endpoint(self) -> str: ...
    @property
    def faults(self) -> faults.FaultInjector: ...

    def release_base(self, name: str, owner: str = ..., ssm_parameter: str | None = ...,
                     architecture: str = ..., platform: str | None = ...,
                     creation_date: datetime | None = ..., *,
                     region: str | None = ...) -> str: ...


PRIVATE_PREFIX = "/_amiforge/"


class PrivateRoutes:
    """WSGI middleware: amiforge's own routes in front of moto's app."""

    def __init__(self, app: Any, cloud: Cloud) -> None:
        self.app = app
        self.cloud = cloud

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PRIVATE_PREFIX):
            return self.app(environ, start_response)
        status, body = self._handle(environ, path[len(PRIVATE_PREFIX):])
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(data)))])
        return [data]

    def _handle(self, environ: dict[str, Any], route: str) -> tuple[str, dict[str, Any]]:
        method = environ.get("REQUEST_METHOD", "GET")
        if route == "health" and method == "GET":
            return "200 OK", {"ok": True, "region": self.cloud.region,
                              "endpoint": self.cloud.endpoint}
        if route == "release-base" and method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                request = json.loads(environ["wsgi.input"].read(length) or b"{}")
                when = request.get("creation_date")
                image_id = self.cloud.release_base(
                    name=request.get("name") or "",
                    owner=request.get("owner") or "amazon",
                    ssm_parameter=request.get("ssm_parameter"),
                    architecture=request.get("architecture") or "x86_64",
                    platform=request.get("platform"),
                    creation_date=datetime.fromisoformat(when) if when else None,
                    region=request.get("region"),
                )
            except (ValueError, TypeError, KeyError) as err:
                return "400 Bad Request", {"error": str(err)}
            return "200 OK", {"image_id": image_id}
        if route == "faults" and method == "GET":
            return "200 OK", self.cloud.faults.stats()
        if route == "faults" and method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                knobs = json.loads(environ["wsgi.input"].read(length) or b"{}")
                if not isinstance(knobs, dict):
                    raise ValueError("send a JSON object of knobs, like {\"fault_rate\": 0.1}")
                unknown = sorted(set(knobs) - set(faults.KNOBS))
                if unknown:  # a typo must not be accepted and silently ignored
                    close = difflib.get_close_matches(unknown[0], faults.KNOBS, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise ValueError(f"unknown fault knob {unknown[0]!r}{hint} (knobs: "
                                     f"{', '.join(faults.KNOBS)})")
                self.cloud.faults.configure(**{k: knobs[k] for k in faults.KNOBS if k in knobs})
            except (ValueError, TypeError) as err:
                return "400 Bad Request", {"error": str(err)}
            return "200 OK", self.cloud.faults.stats()
        return "404 Not Found", {"error": f"no route {method} {PRIVATE_PREFIX}{route}"}
