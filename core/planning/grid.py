"""Grid expansion: the axes people type, the cells they expand to, and request hashes.

A number axis is typed as items separated by commas and/or whitespace (newlines too):

- a value: ``0.3``, ``-1``, ``1e-3``
- a range with a step: ``0.3-0.6 (+0.1)`` → 0.3, 0.4, 0.5, 0.6 (the end is included when the
  steps land on it; arithmetic is decimal, so values print as typed: 0.4, never
  0.40000000000000002). ``0.6-0.3 (+0.1)`` counts down. The step is always positive.
- a range with a count: ``20-40 [3]`` → 20, 30, 40 (rounded half up on integer axes).
- on integer axes only, a bare range steps by one: ``1-4`` → 1, 2, 3, 4.

Negative numbers: a minus sign directly after a number is the range dash, so ``-1-5 (+2)`` is
-1 to 5 and ``-5--1`` is -5 to -1. A minus with a space before it and none after starts a new
negative value: ``0.3 -0.6`` is two values, while ``0.3 - 0.6`` (spaces on both sides) is a range.
Repeated values are dropped, keeping the first. An axis holds at most 200 values.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, DecimalException, localcontext
from typing import Any, Literal, overload

from core.errors import InvalidInput
from core.planning.schema import InputRoles, input_properties, parse_model_ref, validate_input

MAX_VALUES_PER_AXIS = 200
MAX_PROMPT_CHARS = 2000
RANDOM_SEED = -1
MAX_SEED = 2**32 - 1

_NUM = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_ITEM = re.compile(
    rf"(?P<lo>{_NUM})(?:(?:-\s*|\s+-\s+)(?P<hi>{_NUM})"
    rf"(?:\s*\(\s*(?P<step>{_NUM})\s*\)|\s*\[\s*(?P<count>{_NUM})\s*\])?)?(?=[\s,]|\Z)"
)
_SEPARATORS = re.compile(r"[\s,]*")
_STRAY_BRACKET = re.compile(r"\s*[()\[\]]")  # a step or count that did not parse


def _after_separators(text: str, pos: int) -> int:
    """Where the spaces and commas from ``pos`` end (``pos`` itself when there are none)."""
    m = _SEPARATORS.match(text, pos)  # always matches: the pattern accepts the empty string
    return m.end() if m else pos


def _examples(integer: bool) -> str:
    return "20, 25, 30 or 20-40 (+5)" if integer else "0.3, 0.45, 0.6 or 0.3-0.6 (+0.1)"


def _number(literal: str, name: str, integer: bool) -> Decimal:
    try:
        value = Decimal(literal)
        finite = math.isfinite(float(value))
    except (DecimalException, ValueError, OverflowError):
        finite = False
    if not finite or (value and value.adjusted() < -400):
        raise InvalidInput(f"{name} {literal} is out of range: use an ordinary number like 0.5")
    if integer and value != value.to_integral_value():
        raise InvalidInput(f"{name} {literal} is not a whole number; {name} takes whole numbers")
    return value


_Range = tuple[Decimal, Decimal, int, Decimal]  # first value, increment, how many, end


def _item_range(m: re.Match[str], name: str, integer: bool) -> _Range:
    """The range one typed item stands for, checked before any value is made."""
    lo = _number(m["lo"], name, integer)
    if m["hi"] is None:
        return lo, Decimal(0), 1, lo
    hi = _number(m["hi"], name, integer)
    if m["count"] is not None:
        count = _number(m["count"], name, integer=False)
        if count != count.to_integral_value() or count < 2:
            raise InvalidInput(f"{name}: the count in {m[0]!r} must be a whole number, 2 or more")
        return lo, (hi - lo) / (count - 1), int(count), hi
    if m["step"] is None and not integer:
        raise InvalidInput(
            f"{name}: the range {m[0]!r} needs a step like (+0.1) or a count like [5]"
        )
    step = _number(m["step"], name, integer=False) if m["step"] is not None else Decimal(1)
    if integer and step != step.to_integral_value():
        raise InvalidInput(f"{name}: the step in {m[0]!r} must be a whole number, like (+5)")
    if step <= 0:
        hint = f"(+{abs(step)})" if step else "a positive step like (+0.1)"
        raise InvalidInput(
            f"{name}: the step in {m[0]!r} must be positive; write {hint}."
            " A range that starts higher counts down by itself, e.g. 0.6-0.3 (+0.1)"
        )
    # A tiny tolerance keeps an end the steps reach within float error: 0-1 (+0.3333333333333334)
    size = int(abs(hi - lo) / step + Decimal("1e-9")) + 1
    return lo, step if hi >= lo else -step, size, hi


@overload
def parse_number_axis(text: str, *, name: str, integer: Literal[True],
                      max_values: int = MAX_VALUES_PER_AXIS) -> list[int]: ...
@overload
def parse_number_axis(text: str, *, name: str, integer: Literal[False] = False,
                      max_values: int = MAX_VALUES_PER_AXIS) -> list[float]: ...
@overload
def parse_number_axis(text: str, *, name: str, integer: bool,
                      max_values: int = MAX_VALUES_PER_AXIS) -> list[int] | list[float]: ...
def parse_number_axis(
    text: str, *, name: str, integer: bool = False, max_values: int = MAX_VALUES_PER_AXIS
) -> list[int] | list[float]:
    """The values a person typed for one number axis (syntax in the module docstring):
    whole numbers with ``integer=True``, floats otherwise."""
    items: list[_Range] = []
    pos = _after_separators(text, 0)
    with localcontext() as ctx:
        ctx.prec = 60
        while pos < len(text):
            m = _ITEM.match(text, pos)
            if m is None or _STRAY_BRACKET.match(text, m.end()):
                bad = text[pos:].split(",", 1)[0].strip()[:40]
                raise InvalidInput(
                    f"{name}: cannot read {bad!r}. Type values like {_examples(integer)},"
                    " or a range with a count like 20-40 [3]"
                )
            items.append(_item_range(m, name, integer))
            pos = _after_separators(text, m.end())
        if not items:
            raise InvalidInput(f"{name} is empty: type values like {_examples(integer)}")
        total = sum(size for _, _, size, _ in items)
        if total > max_values:
            raise InvalidInput(
                f"{name} has {total:,} values; the limit is {max_values:,} per axis."
                " Use a larger step, a smaller count or fewer values"
            )
        decimals: list[Decimal] = []
        for first, increment, size, end in items:
            values = [first + increment * i for i in range(size)]
            if (values[-1] - end) * increment > 0:  # past the end, within the tolerance
                values[-1] = end
            decimals += values
    if integer:
        return list(dict.fromkeys(int(d.to_integral_value(ROUND_HALF_UP)) for d in decimals))
    return list(dict.fromkeys(float(d) + 0.0 for d in decimals))  # + 0.0 turns -0.0 into 0.0


def _check_prompt(prompt: str, what: str = "prompt") -> str:
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidInput(
            f"The {what} {prompt[:40]!r}... has {len(prompt):,} characters;"
            f" the limit is {MAX_PROMPT_CHARS:,}"
        )
    return prompt


def parse_prompt_variants(text: str) -> list[str]:
    """One prompt per non-blank line, stripped, repeats dropped."""
    prompts = [_check_prompt(line.strip()) for line in text.splitlines() if line.strip()]
    if not prompts:
        raise InvalidInput(
            "The prompt is empty: type at least one prompt (one per line for variants)"
        )
    return list(dict.fromkeys(prompts))


def _sr_items(sr_text: str) -> list[str]:
    try:
        rows = list(csv.reader(io.StringIO(sr_text), skipinitialspace=True))
    except csv.Error as exc:
        raise InvalidInput(
            f"Prompt S/R {sr_text[:40]!r} cannot be read as a comma-separated list ({exc})"
        ) from None
    return [item.strip() for item in itertools.chain.from_iterable(rows) if item.strip()]


def apply_prompt_sr(prompt: str, sr_text: str) -> list[str]:
    """Prompt search/replace as in the A1111 X/Y plot.

    ``sr_text`` is a comma-separated list (quote an item to keep a comma in it); its first item
    must occur in ``prompt``, and each item replaces it in turn, so the first variant is the
    prompt unchanged. Blank ``sr_text`` gives just the prompt.
    """
    items = _sr_items(sr_text)
    if not items:
        return [prompt]
    term = items[0]
    if term not in prompt:
        raise InvalidInput(
            f"Prompt S/R: the search term {term!r} does not occur in the prompt {prompt[:80]!r}"
        )
    return list(dict.fromkeys(prompt.replace(term, item) for item in items))


@dataclass(frozen=True)
class PromptVariant:
    text: str
    label: str  # short column/row heading: "P1", or the S/R replacement


def prompt_variants(text: str, sr_text: str = "") -> tuple[PromptVariant, ...]:
    """Prompt lines, each expanded by Prompt S/R when given, labelled for the grid."""
    lines = parse_prompt_variants(text)
    items = _sr_items(sr_text)
    variants: list[PromptVariant] = []
    for number, line in enumerate(lines, start=1):
        replaced = apply_prompt_sr(line, sr_text)
        if not items:
            variants.append(PromptVariant(line, f"P{number}"))
            continue
        for item, variant in zip(dict.fromkeys(items), replaced):
            label = item if len(lines) == 1 else f"P{number}: {item}"
            variants.append(PromptVariant(_check_prompt(variant), label))
    return tuple(variants)


def _check_seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise InvalidInput(
            f"seed {value!r} is not allowed: use a whole number from 0 to {MAX_SEED:,},"
            " or -1 for a random fixed seed"
        )
    return value


def resolve_seeds(values: Iterable[int], rng: random.Random) -> list[int]:
    """Seeds to send: each -1 becomes a random seed drawn now (``rng.randrange``) and kept."""
    seeds = [rng.randrange(MAX_SEED + 1) if v == RANDOM_SEED else _check_seed(v) for v in values]
    return list(dict.fromkeys(seeds))


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _comma_items(text: str, name: str) -> list[str]:
    if "\n" in text:
        return [line.strip() for line in text.splitlines() if line.strip()]
    try:
        rows = list(csv.reader(io.StringIO(text), skipinitialspace=True))
    except csv.Error as exc:
        raise InvalidInput(f"{name}: {text[:40]!r} cannot be read as a comma list ({exc})") from None
    return [item.strip() for item in itertools.chain.from_iterable(rows) if item.strip()]


def _typed(name: str, text: str, prop: Mapping[str, Any]) -> Any:
    """One typed value of an input, as the schema wants it."""
    kind = prop.get("type")
    if "enum" in prop:
        for choice in prop["enum"]:
            if str(choice) == text or (isinstance(choice, str) and choice.lower() == text.lower()):
                return choice
        choices = ", ".join(str(c) for c in prop["enum"])
        raise InvalidInput(f"{name} {text!r} is not one of the model's choices: {choices}")
    if kind == "boolean":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise InvalidInput(f"{name} {text!r} is not true or false")
    if kind in ("integer", "number"):
        return parse_number_axis(text, name=name, integer=kind == "integer", max_values=1)[0]
    if kind == "array":
        try:
            value = json.loads(text)
        except ValueError:
            value = _comma_items(text, name)
        return value if isinstance(value, list) else [value]
    return text


def parse_axis(name: str, text: str, prop: Mapping[str, Any]) -> list[Any]:
    """The values typed for one axis over a model input: the number syntax above for
    integers and numbers (``0.3-0.6 (+0.1)``, ``20-40 [3]``), otherwise a comma list (one per
    line also works, so text with commas can be given), each checked against the input's
    type and choices."""
    kind = prop.get("type")
    if "enum" not in prop and kind in ("integer", "number"):
        return parse_number_axis(text, name=name, integer=kind == "integer")
    items = _comma_items(text, name) if kind != "string" or "\n" not in text else [
        line.strip() for line in text.splitlines() if line.strip()]
    if not items:
        raise InvalidInput(f"{name} is empty: give at least one value")
    if len(items) > MAX_VALUES_PER_AXIS:
        raise InvalidInput(f"{name} has {len(items):,} values; the limit is "
                           f"{MAX_VALUES_PER_AXIS:,} per axis")
    return list(dict.fromkeys(_typed(name, item, prop) for item in items))


def parse_value(name: str, text: str, prop: Mapping[str, Any]) -> Any:
    """One fixed value typed for a model input (``--set width=768``)."""
    return _typed(name, text.strip(), prop)


@dataclass(frozen=True)
class GridImage:
    image_id: str
    sha256: str
    megapixels: float | None = None


@dataclass(frozen=True)
class AxisSpec:
    """One swept input: ``name`` is what the grid calls it (a role such as ``strength`` or
    the input's own name), ``input`` the model's input it sets."""

    name: str
    values: tuple[Any, ...]
    input: str | None = None  # None for image and prompt, set by the grid itself


@dataclass(frozen=True)
class GridSpec:
    """One model's grid. Axes expand in order, slowest first (the last varies fastest)."""

    model_version: str  # "owner/name:version", a version id or an official "owner/name"
    images: tuple[GridImage, ...]
    prompts: tuple[PromptVariant, ...]
    axes: tuple[AxisSpec, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)  # scheduler, width... by input name
    negative_prompt: str = ""

    def all_axes(self) -> tuple[AxisSpec, ...]:
        return (AxisSpec("image", tuple(image.image_id for image in self.images)),
                AxisSpec("prompt", tuple(variant.label for variant in self.prompts)),
                *self.axes)


@dataclass(frozen=True)
class CellSpec:
    """One planned cell: its place on every axis, and the exact input sent (image excluded)."""

    index: int
    image_id: str
    image_sha256: str
    prompt: str
    prompt_label: str
    negative_prompt: str
    values: dict[str, Any]  # axis name → value, for this cell's axes
    model_input: dict[str, Any]  # the full Replicate input except the image
    request_hash: str
    # What the model will use for the roles the dashboard keeps as columns: the value sent,
    # else the schema's default (None: the model has no such input).
    seed: int | None = None
    guidance: float | None = None
    steps: int | None = None
    strength: float | None = None
    model: str = ""  # owner/name, set by the plan (one grid per model)


def count_cells(spec: GridSpec) -> int:
    """Cells the grid would have, without expanding it (cheap enough for every keystroke)."""
    return math.prod(len(axis.values) for axis in spec.all_axes())


def _check_spec(spec: GridSpec, roles: InputRoles, max_cells: int) -> None:
    axes = spec.all_axes()
    empty = [axis.name for axis in axes if not axis.values]
    if empty:
        listed = ", ".join(empty)
        raise InvalidInput(f"This grid has no cells: give at least one value for {listed}")
    cells = count_cells(spec)
    if cells > max_cells:
        sizes = " × ".join(f"{len(axis.values)} {axis.name}" for axis in axes)
        raise InvalidInput(
            f"This grid has {cells:,} cells ({sizes}); the limit is {max_cells:,}."
            " Remove values from an axis or split it into several sweeps"
        )
    for variant in spec.prompts:
        if not variant.text.strip():
            raise InvalidInput(f"Prompt {variant.label} is empty: type a prompt")
        _check_prompt(variant.text)
    _check_prompt(spec.negative_prompt, "negative prompt")
    set_by_grid = {axis.input for axis in spec.axes if axis.input} | {
        name for name in (roles.prompt, roles.image) if name}
    if spec.negative_prompt and roles.negative_prompt:
        set_by_grid.add(roles.negative_prompt)
    clashes = sorted(set_by_grid & set(spec.fixed))
    if clashes:
        raise InvalidInput(
            f"{', '.join(clashes)} cannot be a fixed parameter: the grid axes, prompts and"
            " images set it"
        )
    for axis in spec.axes:
        if axis.input == roles.seed and axis.input is not None:
            _check_seed_axis(axis.values)


def _check_seed_axis(values: tuple[Any, ...]) -> None:
    if RANDOM_SEED in values:
        raise ValueError("resolve -1 seeds with resolve_seeds() before expanding the grid")
    for seed in values:
        _check_seed(seed)


def _resolved(model_input: Mapping[str, Any], defaults: Mapping[str, Any], name: str | None) -> Any:
    if name is None:
        return None
    return model_input.get(name, defaults.get(name))


def expand_grid(
    spec: GridSpec,
    *,
    roles: InputRoles,
    max_cells: int,
    openapi_schema: Mapping[str, Any],
) -> list[CellSpec]:
    """Every cell of one model's grid, checked against its input schema.

    Order is stable: image, prompt, then ``spec.axes`` in order (the last varies fastest).
    Only what the grid sets is sent: the prompt, a non-empty negative prompt, each axis and
    each fixed value; the model's defaults cover the rest. Raises InvalidInput listing each
    distinct problem once.
    """
    _check_spec(spec, roles, max_cells)
    if roles.prompt is None and any(v.text for v in spec.prompts):
        raise InvalidInput("This model has no prompt input: it cannot take the prompt variants")
    combos = list(itertools.product(spec.images, spec.prompts, *(a.values for a in spec.axes)))
    negative = ({roles.negative_prompt: spec.negative_prompt}
                if spec.negative_prompt and roles.negative_prompt else {})
    inputs = [
        {roles.prompt or "prompt": variant.text, **negative,
         **{axis.input: value for axis, value in zip(spec.axes, values) if axis.input},
         **spec.fixed}
        for _, variant, *values in combos
    ]
    problems: dict[str, None] = {}  # an ordered set: each bad value is reported once
    image_input = (roles.image,) if roles.image else ()
    for model_input in inputs:
        found = validate_input(openapi_schema, model_input, supplied_later=image_input)
        problems.update(dict.fromkeys(found))
    if problems:
        listed = "\n".join(f"- {problem}" for problem in problems)
        raise InvalidInput(f"The model does not accept some values in this grid:\n{listed}")
    defaults = {name: prop["default"] for name, prop in input_properties(openapi_schema).items()
                if "default" in prop}
    return [
        CellSpec(
            index=index, image_id=image.image_id, image_sha256=image.sha256,
            prompt=variant.text, prompt_label=variant.label,
            negative_prompt=spec.negative_prompt if negative else "",
            values={axis.name: value for axis, value in zip(spec.axes, values)},
            model_input=model_input,
            request_hash=request_hash(spec.model_version, image.sha256, model_input),
            seed=_resolved(model_input, defaults, roles.seed),
            guidance=_resolved(model_input, defaults, roles.guidance),
            steps=_resolved(model_input, defaults, roles.steps),
            strength=_resolved(model_input, defaults, roles.strength),
        )
        for index, ((image, variant, *values), model_input) in enumerate(zip(combos, inputs))
    ]


def _canonical(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot hash a request containing {value!r}")
        rounded = float(f"{value:.12g}")  # 0.30000000000000004 and 0.3 are the same request
        return int(rounded) if rounded.is_integer() else rounded  # and so are 7.0 and 7
    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    raise TypeError(f"cannot hash a request containing {type(value).__name__}")


def request_hash(
    model_version: str, image_sha256: str | None, model_input: Mapping[str, Any]
) -> str:
    """sha256 of the canonical request: the same version, image and input give the same hash.

    ``model_version`` may be ``owner/name:version`` or the bare version id (both hash alike);
    pass a pinned version, since a bare model name means whatever is latest.
    """
    model, version = parse_model_ref(model_version)
    payload = {
        "version": version or model,
        "image_sha256": image_sha256,
        "input": _canonical(model_input),
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
