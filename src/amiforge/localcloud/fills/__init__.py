"""The local cloud's fills of moto: declared, fingerprinted, installed and removed as one.

moto 5.2.5 departs from AWS in places amiforge meets (see each service's module). The
local cloud fills each gap by replacing one attribute of moto: a method, a property, a
module function. Every such replacement is a :class:`Fill`, declared in the module of its
service (:mod:`.ec2`, :mod:`.stepfunctions`, :mod:`.cloudformation`, ...), naming

* its **target**: ``"module:Class"`` (or ``"module"``) and the attribute replaced;
* how to **build** the replacement from moto's original (found with
  :func:`inspect.getattr_static`, so a classmethod or a property arrives as itself);
* a **fingerprint** of moto's original code (:func:`fingerprint`: a short hash of its
  source), recorded for moto :data:`MOTO_VERSION`; ``None`` for an attribute moto does
  not have, which the fill adds.

:data:`~amiforge.localcloud.fills.services.REGISTRY` holds every service's fills in one
:class:`FillRegistry`, the one path they go in and out by: :meth:`FillRegistry.install`
refuses a second install and a fill whose target no longer matches its fingerprint (the
local cloud then refuses to start, with one line naming the fill), and
:meth:`FillRegistry.uninstall` puts back every original, so nothing of amiforge is left
in moto after :meth:`LocalCloud.stop <amiforge.localcloud.LocalCloud.stop>`.

Moving to another moto version: change :data:`MOTO_VERSION` with the pin in
``pyproject.toml``, run :meth:`FillRegistry.mismatches`, read what changed in each
function it names, and update the fill and its fingerprint.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from amiforge.errors import OperationFailed

# The moto the fills were written against; pyproject.toml pins the same.
MOTO_VERSION = "5.2.5"

_MISSING: Any = object()


class MotoMismatch(OperationFailed):
    """The installed moto is not the one the local cloud's fills were written for."""


class FillsAlreadyInstalled(RuntimeError):
    """The fills are in moto already: a second install would wrap them in themselves."""


def installed_moto_version() -> str:
    """The version of the moto distribution this process imports."""
    return importlib.metadata.version("moto")


def check_moto_version() -> None:
    """Raise :class:`MotoMismatch` unless the installed moto is :data:`MOTO_VERSION`."""
    found = installed_moto_version()
    if found != MOTO_VERSION:
        raise MotoMismatch(
            f"the local cloud needs moto {MOTO_VERSION} (it extends moto's internals), "
            f"but moto {found} is installed",
            hint=f"pip install 'moto[server]=={MOTO_VERSION}'")


def _code_of(value: Any) -> Any:
    """What a fingerprint reads: the function behind a classmethod, staticmethod or
    property; the class of a value that is not code (a backend registry)."""
    if isinstance(value, classmethod | staticmethod):
        return value.__func__
    if isinstance(value, property):
        return value.fget
    if inspect.isroutine(value) or inspect.isclass(value):
        return value
    return type(value)


def fingerprint(value: Any) -> str:
    """A short hash of the source of ``value`` (see :func:`_code_of`)."""
    code = _code_of(value)
    try:
        text = inspect.getsource(code)
    except (OSError, TypeError):
        text = f"{getattr(code, '__module__', '?')}.{getattr(code, '__qualname__', code)!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def resolve_owner(owner: str) -> Any:
    """``"package.module:Class.Inner"`` (or ``"package.module"``) -> the object."""
    module_name, _, path = owner.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in filter(None, path.split(".")):
        found = getattr(found, part)
    return found


@dataclass(frozen=True)
class Fill:
    """One replaced attribute of moto. See the module doc."""

    name: str                      # e.g. "ec2.run-instances": what the line names
    owner: str                     # "moto.ec2.models.instances:InstanceBackend"
    attribute: str                 # "run_instances"
    build: Callable[[Any], Any]    # moto's original (None when absent) -> the replacement
    fingerprint: str | None        # of moto's original; None: moto has no such attribute

    @property
    def target(self) -> str:
        return f"{self.owner}.{self.attribute}"


@dataclass(frozen=True)
class _Saved:
    owner: Any
    attribute: str
    value: Any                     # what the owner itself held (_MISSING: inherited/absent)


class FillRegistry:
    """Fills installed and removed together, each target at most once."""

    def __init__(self, fills: Iterable[Fill]) -> None:
        self.fills: tuple[Fill, ...] = tuple(fills)
        names: set[str] = set()
        targets: dict[str, str] = {}
        for fill in self.fills:
            if fill.name in names:
                raise ValueError(f"two fills are named {fill.name!r}")
            if fill.target in targets:
                raise ValueError(f"fills {targets[fill.target]!r} and {fill.name!r} both "
                                 f"replace {fill.target}: merge them into one")
            names.add(fill.name)
            targets[fill.target] = fill.name
        self._saved: dict[str, _Saved] = {}
        self._installed = False

    @property
    def installed(self) -> bool:
        return self._installed

    def mismatches(self) -> dict[str, tuple[str | None, str | None]]:
        """Fill name -> (recorded, found) for every fill whose target's code changed.
        Reads moto's originals, so it is meant for an uninstalled registry."""
        found: dict[str, tuple[str | None, str | None]] = {}
        for fill in self.fills:
            original = inspect.getattr_static(resolve_owner(fill.owner), fill.attribute,
                                              _MISSING)
            actual = None if original is _MISSING else fingerprint(original)
            if actual != fill.fingerprint:
                found[fill.name] = (fill.fingerprint, actual)
        return found

    def _check(self, fill: Fill, original: Any) -> None:
        actual = None if original is _MISSING else fingerprint(original)
        if actual == fill.fingerprint:
            return
        if fill.fingerprint is None:
            change = "moto now has this attribute itself"
        elif actual is None:
            change = "moto no longer has this attribute"
        else:
            change = f"its code changed (fingerprint {actual}, recorded {fill.fingerprint})"
        raise MotoMismatch(
            f"the local cloud's fill {fill.name!r} does not fit {fill.target}: {change}",
            hint=f"use moto {MOTO_VERSION}, or update the fill to this moto")

    def install(self) -> None:
        """Check every fingerprint, then replace every target; all or nothing."""
        if self._installed:
            raise FillsAlreadyInstalled(
                "the local cloud's fills of moto are installed already; uninstall them "
                "first (one local cloud per process)")
        owners = [resolve_owner(fill.owner) for fill in self.fills]
        originals = [inspect.getattr_static(owner, fill.attribute, _MISSING)
                     for owner, fill in zip(owners, self.fills, strict=True)]
        for fill, original in zip(self.fills, originals, strict=True):
            self._check(fill, original)
        self._installed = True
        try:
            for owner, fill, original in zip(owners, self.fills, originals, strict=True):
                replacement = fill.build(None if original is _MISSING else original)
                self._saved[fill.name] = _Saved(owner, fill.attribute,
                                                vars(owner).get(fill.attribute, _MISSING))
                setattr(owner, fill.attribute, replacement)
        except BaseException:
            self.uninstall()
            raise

    def uninstall(self) -> None:
        """Put every original back (an attribute the owner did not hold is removed)."""
        for name in reversed(list(self._saved)):
            saved = self._saved.pop(name)
            if saved.value is _MISSING:
                if saved.attribute in vars(saved.owner):
                    delattr(saved.owner, saved.attribute)
            else:
                setattr(saved.owner, saved.attribute, saved.value)
        self._installed = False

    def originals(self) -> dict[str, Any]:
        """Target -> what its owner held before install (for checks after uninstall)."""
        return {fill.target: vars(resolve_owner(fill.owner)).get(fill.attribute, _MISSING)
                for fill in self.fills}


MISSING = _MISSING  # what :meth:`FillRegistry.originals` shows for an absent attribute
