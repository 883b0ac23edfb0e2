"""Schedules from outside clrbench: ``register()``, ``module:function`` paths, entry points.

A plug-in formula is written like a built-in, ``f(step, xp, **params)`` with ``step`` an int64
array (``numpy``) or tensor (``tensorflow.experimental.numpy``): boundaries by integer
``xp.floor_divide``/``xp.remainder`` of the step, smooth parts in float64. Its parameters are
declared by its signature: every parameter after ``(step, xp)`` needs a type annotation, which is
its check (``float``: a finite number, ``int``: an integer, ``str``, ``bool``, ``Literal[...]``,
or one of the constrained aliases below such as ``Rate``); a default makes it optional. The
aliases also give the parameter its role (``Rate``: a learning rate the study scales, ``Length``:
the shape's length, ``Cycle``, ...; see ``spec``); any other annotation is a ``shape`` parameter.
``declare(version=..., check=..., roles=...)`` adds a version (otherwise a hash of the function's
source), a cross-parameter check and roles by parameter name. The version and
``module:qualname`` are part of every run id.

Name resolution (which of these a name is) lives in ``registry``, above this module.
"""

from __future__ import annotations

import hashlib
import inspect
import marshal
import typing
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Annotated, Any, Literal

from clrbench import references
from clrbench.errors import ScheduleError
from clrbench.schedules.spec import (
    REGISTRY,
    Param,
    Spec,
    _at_least_one,
    _count,
    _factor,
    _fraction,
    _number,
    _rate,
    _rate_or_zero,
    check_role,
)

ENTRY_POINT_GROUP = "clrbench.schedules"


@dataclass(frozen=True)
class Role:
    """A parameter's role in an annotation: ``Annotated[int, Role("length")]`` (see ``spec``)."""

    name: str


# Constrained parameter types for plug-in signatures (the built-ins' own checks and roles).
Rate = Annotated[float, _rate, Role("rate")]  # a learning rate > 0
RateOrZero = Annotated[float, _rate_or_zero, Role("rate")]  # a learning rate >= 0
NonNegative = Annotated[float, _rate_or_zero]  # >= 0
Factor = Annotated[float, _factor]  # in (0, 1]
Fraction = Annotated[float, _fraction]  # in (0, 1)
AtLeastOne = Annotated[float, _at_least_one]  # >= 1
Count = Annotated[int, _count, Role("steps")]  # a positive integer of iterations
Length = Annotated[int, _count, Role("length")]  # iterations of the whole shape
Warmup = Annotated[int, _count, Role("warmup")]  # iterations of a leading warm-up
Cycle = Annotated[int, _count, Role("cycle")]  # iterations per cycle
HalfCycle = Annotated[int, _count, Role("half_cycle")]  # iterations per half cycle

ALIASES = {Rate: "Rate (> 0)", RateOrZero: "RateOrZero (>= 0)",
           NonNegative: "NonNegative (>= 0)", Factor: "Factor (0, 1]",
           Fraction: "Fraction (0, 1)", AtLeastOne: "AtLeastOne (>= 1)",
           Count: "Count (integer >= 1)", Length: "Length (iterations)",
           Warmup: "Warmup (iterations)", Cycle: "Cycle (iterations)",
           HalfCycle: "HalfCycle (iterations)"}  # fmt: skip


def _integer(where: str, value: Any) -> int:
    x = _number(where, value)
    if x != int(x):
        raise ScheduleError(f"{where} must be an integer, got {value!r}")
    return int(x)


def _boolean(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ScheduleError(f"{where} must be true or false, got {value!r}")
    return value


def _string(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ScheduleError(f"{where} must be a string, got {value!r}")
    return value


def _choice(options: tuple) -> Callable[[str, Any], Any]:
    def check(where: str, value: Any) -> Any:
        if value not in options or isinstance(value, bool) != isinstance(options[0], bool):
            raise ScheduleError(f"{where} must be one of {', '.join(map(repr, options))}")
        return value

    return check


# Keys of a [[schedule]] table or of make() that are not formula parameters.
RESERVED = frozenset({"name", "label", "granularity", "steps_per_epoch", "lr_mode", "params"})
PLAIN_CHECKS = {float: _number, int: _integer, bool: _boolean, str: _string}
SUPPORTED = "float, int, str, bool, Literal[...], or clrbench.schedules.Rate, Count, Factor, ..."


def _check_for(where: str, annotation: Any) -> Callable[[str, Any], Any]:
    """The parameter check an annotation stands for."""
    if typing.get_origin(annotation) is Annotated:
        checks = [m for m in typing.get_args(annotation)[1:] if callable(m)]
        if len(checks) == 1:
            return checks[0]
    elif typing.get_origin(annotation) is Literal:
        return _choice(typing.get_args(annotation))
    elif annotation in PLAIN_CHECKS:
        return PLAIN_CHECKS[annotation]
    shown = "no annotation" if annotation is inspect.Parameter.empty else repr(annotation)
    raise ScheduleError(f"{where} has {shown}; annotate it with {SUPPORTED}")


def _meaning(annotation: Any) -> str:
    """A readable type for ``list``: ``Rate (> 0)``, ``int``, ``one of 'cos', 'linear'``."""
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(annotation)))
    for alias, text in ALIASES.items():
        if annotation == alias:
            return text
    return getattr(annotation, "__name__", repr(annotation))


def _role_for(annotation: Any) -> str:
    """The role an annotation declares (a ``Role`` in ``Annotated``, as ``Rate`` has), else
    ``shape``: an undeclared parameter is passed to the formula and never scaled or noted."""
    if typing.get_origin(annotation) is Annotated:
        for meta in typing.get_args(annotation)[1:]:
            if isinstance(meta, Role):
                return meta.name
    return "shape"


def declare(
    version: str | None = None,
    check: Callable[[dict], None] | None = None,
    roles: dict[str, str] | None = None,
) -> Callable:
    """Decorate a plug-in formula with a version (instead of a hash of its source: bump it when a
    helper the formula calls changes), ``check(params)``, raising ``ValueError`` with a message
    for parameter combinations that make no sense, and/or ``roles`` (``{"peak": "rate"}``: what
    each parameter is, beyond what its annotation says; see ``clrbench.schedules.ROLES``)."""

    def decorate(formula: Callable) -> Callable:
        setattr(formula, "__clrbench_version__", version)  # noqa: B010 (mypy: a function has no such attribute)
        setattr(formula, "__clrbench_check__", check)  # noqa: B010
        setattr(formula, "__clrbench_roles__", roles)  # noqa: B010
        return formula

    return decorate


def identity(formula: Callable) -> tuple[str, str]:
    """``(module:qualname, version)``: the declared version, else a hash of the source."""
    function = f"{formula.__module__}:{formula.__qualname__}"
    declared = getattr(formula, "__clrbench_version__", None)
    if declared is not None:
        return function, str(declared)
    try:
        content = inspect.getsource(formula).encode()
    except (OSError, TypeError):  # defined in a REPL: fall back to the compiled code
        content = marshal.dumps(formula.__code__)
    return function, "src-" + hashlib.sha256(content).hexdigest()[:12]


def spec_from_function(
    name: str,
    formula: Any,
    origin: str,
    version: str | None = None,
    check: Callable | None = None,
    registration: tuple | None = None,
    roles: dict[str, str] | None = None,
) -> Spec:
    """Validate a formula's signature and turn it into a spec (parameters from the signature)."""
    if not callable(formula) or not hasattr(formula, "__code__"):
        raise ScheduleError(f"{name}: {formula!r} is not a function")
    signature = inspect.signature(formula)
    arguments = list(signature.parameters.values())
    if [p.name for p in arguments[:2]] != ["step", "xp"]:
        shown = ", ".join(p.name for p in arguments[:2])
        raise ScheduleError(
            f"{name}: a schedule formula takes (step, xp, ...) first, got ({shown})"
        )
    try:
        hints = typing.get_type_hints(formula, include_extras=True)
    except Exception as exc:
        raise ScheduleError(f"{name}: cannot read its annotations ({exc})") from None
    declared = _declared_roles(name, formula, roles, [p.name for p in arguments[2:]])
    params = []
    for argument in arguments[2:]:
        where = f"{name}: parameter {argument.name!r}"
        if argument.kind in (argument.VAR_POSITIONAL, argument.VAR_KEYWORD):
            raise ScheduleError(f"{where}: *args/**kwargs cannot be declared parameters")
        if argument.name in RESERVED:
            raise ScheduleError(f"{where}: the name is reserved ({', '.join(sorted(RESERVED))})")
        checker = _check_for(where, hints.get(argument.name, argument.empty))
        default = None
        if argument.default is not argument.empty:
            if argument.default is None:
                raise ScheduleError(f"{where}: a default of None is not supported")
            default = checker(f"{name}: default of {argument.name}", argument.default)
        annotation = hints[argument.name]
        role = declared.get(argument.name, _role_for(annotation))
        role = check_role(where, role)
        params.append(Param(argument.name, checker, _meaning(annotation), default, role))
    function, derived = identity(formula)
    version = version if version is not None else derived
    check = check if check is not None else getattr(formula, "__clrbench_check__", None)
    relations = () if check is None else (_relation(check),)
    spec = Spec(formula, tuple(params), relations, origin, function, version)
    return replace(spec, registration=registration)


def _declared_roles(
    name: str, formula: Any, roles: dict[str, str] | None, known: list[str]
) -> dict[str, str]:
    """Roles given to ``register``/``declare``, each naming a parameter of the formula."""
    declared = roles if roles is not None else getattr(formula, "__clrbench_roles__", None)
    if declared is None:
        return {}
    if not isinstance(declared, dict):
        raise ScheduleError(f"{name}: roles must be a dict of parameter -> role, got {declared!r}")
    for param in declared:
        if param not in known:
            raise ScheduleError(
                f"{name}: roles names {param!r}, not a parameter (parameters: {', '.join(known)})"
            )
    return dict(declared)


def _relation(check: Callable[[dict], None]) -> Callable[[str, dict], None]:
    def relation(name: str, values: dict) -> None:
        try:
            check(dict(values))
        except (ValueError, TypeError) as exc:
            raise ScheduleError(f"{name}: {exc}") from None

    return relation


def register(
    name: str,
    formula: Callable,
    version: str | None = None,
    check: Callable[[dict], None] | None = None,
    roles: dict[str, str] | None = None,
) -> None:
    """Make ``formula`` available as schedule ``name`` in this process (and in the workers it
    sends runs to); registering the same name again replaces it. ``roles``: as in ``declare``."""
    existing = REGISTRY.get(name)
    if not isinstance(name, str) or not name.isidentifier():
        raise ScheduleError(f"register: a schedule name must be an identifier, got {name!r}")
    if existing is not None and existing.registration is None:
        raise ScheduleError(f"register: {name!r} is a {existing.origin} schedule; choose a name")
    origin = f"register() in {getattr(formula, '__module__', '?')}"
    registration = (formula, version, check, roles)
    REGISTRY[name] = spec_from_function(name, formula, origin, version, check, registration, roles)


def unregister(name: str) -> None:
    """Remove a ``register()``-ed schedule (built-ins cannot be removed)."""
    spec = REGISTRY.get(name)
    if spec is None or spec.registration is None:
        raise ScheduleError(f"unregister: {name!r} is not a register()-ed schedule")
    del REGISTRY[name]


def entry_points() -> dict[str, metadata.EntryPoint]:
    """Installed ``clrbench.schedules`` entry points by name (built-in names win)."""
    found = references.entry_points(ENTRY_POINT_GROUP)
    return {k: v for k, v in found.items() if k not in REGISTRY}


def from_import_path(path: str) -> Spec:
    """The spec of a ``package.module:function`` schedule."""
    target = references.import_path(path, ScheduleError)
    return spec_from_function(path, target, f"import path {path.split(':')[0]}")


def from_entry_point(point: metadata.EntryPoint) -> Spec:
    """The spec of an installed ``clrbench.schedules`` entry point."""
    target = references.load_entry_point(point, ScheduleError)
    origin = f"entry point of {references.distribution(point)}"
    return spec_from_function(point.name, target, origin)
