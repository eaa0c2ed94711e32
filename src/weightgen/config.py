"""Experiment configuration: typed dataclasses read from YAML, validated key by key.

A config file has the sections ``data``, ``target``, ``hypernet``, ``objective``, ``train``,
the top-level keys ``name``, ``seed`` and ``method``, and one section per registered method
that has settings of its own (``Method.settings``, under the method's name: ``mnfg:``,
``direct:``, ...), so a new method brings its section without editing this module. Unknown
keys, wrong types and out-of-range values raise a :class:`WeightgenError` that names the key.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .data import DataConfig, input_shape
from .errors import WeightgenError, check_config, check_value
from .fileio import atomic_write_text
from .methods import METHODS
from .models.hypernet import HypernetConfig, default_generator_hidden
from .objective import ObjectiveConfig
from .targets import TargetSpec, preset
from .terms.function import PATCH_GRID


@dataclass(frozen=True)
class TargetConfig:
    """Either a named preset or an explicit spec (``input_shape`` and ``layers``)."""

    preset: str | None = "mnist_cnn"
    input_shape: tuple[int, ...] | None = None
    layers: tuple[dict, ...] | None = None

    def build(self, data_shape: tuple[int, ...] = (1, 28, 28)) -> TargetSpec:
        """The spec; a layer-by-layer target without ``input_shape`` reads ``data_shape``."""
        if self.layers is not None:
            return TargetSpec.from_dict(
                {"input_shape": self.input_shape or data_shape, "layers": list(self.layers)}
            )
        if self.preset is None:
            raise WeightgenError("config: target needs a preset or layers")
        return preset(self.preset)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 13000
    noise_samples: int = 32
    images_per_network: int = 32
    lr: float = 3e-4
    lr_decay: float = 0.99998  # multiplied in every step (lr_schedule: exponential)
    # "warmup_cosine": linear warm-up over warmup_steps to lr, then a cosine to
    # lr · lr_min_ratio at the last step (issue 27's schedules); lr_decay is then unused
    lr_schedule: Literal["exponential", "warmup_cosine"] = "exponential"
    warmup_steps: int = 0
    lr_min_ratio: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    validate_every: int = 1000
    validation_networks: int = 200
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    # also keep the checkpoint with the best validation majority vote (``--step best``)
    keep_best_checkpoint: bool = True
    log_every: int = 20  # steps between lines of metrics.jsonl
    tensorboard: bool = False  # also write the metrics as TensorBoard scalars (RUN/tensorboard)
    # arithmetic of the target networks in training: "bfloat16" = mixed precision (autocast)
    precision: Literal["float32", "bfloat16"] = "float32"

    def __post_init__(self) -> None:
        check_value("train.steps", self.steps, ">= 0")
        check_value(
            "train.noise_samples",
            self.noise_samples,
            ">= 2",
            "the entropy needs nearest neighbours",
        )
        check_value("train.images_per_network", self.images_per_network, ">= 1")
        check_value("train.lr", self.lr, "> 0")
        check_value("train.lr_decay", self.lr_decay, "in (0, 1]")
        check_value("train.warmup_steps", self.warmup_steps, ">= 0")
        check_value("train.lr_min_ratio", self.lr_min_ratio, "in [0, 1]")
        check_value("train.adam_betas", self.adam_betas, "in [0, 1)")
        check_value("train.adam_eps", self.adam_eps, "> 0")
        check_value("train.validate_every", self.validate_every, ">= 1")
        check_value("train.validation_networks", self.validation_networks, ">= 2")
        check_value("train.checkpoint_every", self.checkpoint_every, ">= 1")
        check_value("train.keep_checkpoints", self.keep_checkpoints, ">= 1")
        check_value("train.log_every", self.log_every, ">= 1")


@dataclass(frozen=True)
class Config:
    name: str = "run"
    seed: int = 8734
    method: str = "hypernetwork"  # a key of weightgen.methods.METHODS
    data: DataConfig = field(default_factory=DataConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    hypernet: HypernetConfig = field(default_factory=HypernetConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # each registered method's own settings by method name (read as ``config.mnfg``); a
    # section not given takes its defaults
    methods: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_value("seed", self.seed, ">= 0")
        check_config(
            self.method in METHODS,
            "method",
            f"must be one of {sorted(METHODS)}, got {_shown(self.method)}",
        )
        sections = method_sections()
        unknown = sorted(set(self.methods) - set(sections))
        check_config(
            not unknown, unknown[0] if unknown else "", "is no registered method's section"
        )
        object.__setattr__(
            self,
            "methods",
            {name: self.methods.get(name) or settings() for name, settings in sections.items()},
        )

    def __getattr__(self, name: str) -> Any:
        """A method's own settings: ``config.mnfg`` is ``config.methods["mnfg"]``."""
        methods = self.__dict__.get("methods", {})
        if name in methods:
            return methods[name]
        raise AttributeError(f"'Config' object has no attribute {name!r}")

    def spec(self) -> TargetSpec:
        """The target networks' spec (a layer-by-layer target without ``input_shape`` reads
        the dataset's inputs)."""
        if self.target.layers is None or self.target.input_shape is not None:
            return self.target.build()
        return self.target.build(input_shape(self.data))

    def replace(self, **sections: Any) -> Config:
        """A copy with whole sections replaced, core ones or methods' (``mnfg=...``)."""
        own = {k: sections.pop(k) for k in list(sections) if k in self.methods}
        return dataclasses.replace(self, **sections, methods={**self.methods, **own})

    def to_dict(self) -> dict:
        return _to_plain(self)


_FILE_NAMES = {"lam": "lambda"}  # field name -> key in files


def method_sections() -> dict[str, type]:
    """The config sections that methods own: method name -> its settings dataclass."""
    return {name: cls.settings for name, cls in METHODS.items() if cls.settings is not None}


MAX_INTEGER = 2**63  # seeds and sizes: torch's generators take 64-bit seeds


def _shown(value: Any, limit: int = 80) -> str:
    """repr of a value for a one-line message, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, Config):  # the methods' sections sit at the top level of a file
        plain = {
            f.name: _to_plain(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if f.name != "methods"
        }
        return {**plain, **{name: _to_plain(settings) for name, settings in obj.methods.items()}}
    if dataclasses.is_dataclass(obj):
        return {
            _FILE_NAMES.get(f.name, f.name): _to_plain(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
        }
    if isinstance(obj, (tuple, list)):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def _coerce(value: Any, kind: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``kind``; return it in the dataclass's type."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, key)
            except WeightgenError as err:
                errors.append(str(err))
        raise WeightgenError(errors[0])
    if origin is Literal:
        if value not in args:
            raise WeightgenError(f"config: {key} must be one of {list(args)}, got {_shown(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise WeightgenError(f"config: {key} must be a list, got {_shown(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise WeightgenError(f"config: {key} must have {len(args)} entries, got {len(value)}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _build(kind, value, key)
    if kind is bool:
        if not isinstance(value, bool):
            raise WeightgenError(f"config: {key} must be true or false, got {_shown(value)}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise WeightgenError(f"config: {key} must be an integer, got {_shown(value)}")
        if abs(value) >= MAX_INTEGER:
            raise WeightgenError(f"config: {key} must be below 2**63 in size, got {_shown(value)}")
        return value
    if kind is float:
        if isinstance(value, str):  # YAML reads 1e3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise WeightgenError(f"config: {key} must be a number, got {_shown(value)}")
        if not math.isfinite(float(value)):
            raise WeightgenError(f"config: {key} must be a finite number, got {_shown(value)}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise WeightgenError(f"config: {key} must be a string, got {_shown(value)}")
        return value
    if kind is dict:
        if not isinstance(value, dict):
            raise WeightgenError(f"config: {key} must be a mapping, got {_shown(value)}")
        return value
    raise TypeError(f"unsupported config annotation {kind!r}")  # a bug, not user input


def did_you_mean(key: Any, choices: Iterable[str], prefix: str = "") -> str:
    """ " (did you mean PREFIX.CLOSEST?)" for a mistyped key, or "" when nothing is close."""
    close = difflib.get_close_matches(str(key), list(choices), n=1, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {prefix + '.' if prefix else ''}{close[0]}?)"


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise WeightgenError(
            f"config: {prefix or 'the file'} must be a mapping, got {_shown(data)}"
        )
    hints = typing.get_type_hints(cls)
    by_file_name = {
        _FILE_NAMES.get(f.name, f.name): f.name
        for f in dataclasses.fields(cls)
        if not (cls is Config and f.name == "methods")
    }
    sections = method_sections() if cls is Config else {}
    values: dict[str, Any] = {"methods": {}} if cls is Config else {}
    registries = {
        f.name: f.metadata["sections"] for f in dataclasses.fields(cls) if "sections" in f.metadata
    }
    for key, value in data.items():
        shown = key if isinstance(key, str) and key.isprintable() else repr(key)
        path = f"{prefix}.{shown}" if prefix else shown
        if key in sections:
            values["methods"][key] = _build(sections[key], value, path)
            continue
        if key not in by_file_name:
            raise WeightgenError(
                f"config: unknown key {path}{did_you_mean(key, [*by_file_name, *sections], prefix)}"
            )
        name = by_file_name[key]
        if name in registries:  # a mapping of registered sections (objective.terms)
            values[name] = _build_sections(registries[name](), value, path)
            continue
        values[name] = _coerce(value, hints[name], path)
    try:
        return cls(**values)
    except (ValueError, TypeError) as err:
        raise WeightgenError(f"config: {prefix or 'the file'}: {err}") from None


def _build_sections(registry: dict[str, type], data: Any, prefix: str) -> dict[str, Any]:
    """A mapping of section name -> settings, each checked against its registered dataclass."""
    if not isinstance(data, dict):
        raise WeightgenError(f"config: {prefix} must be a mapping, got {_shown(data)}")
    unknown = [key for key in data if key not in registry]
    if unknown:
        raise WeightgenError(
            f"config: {prefix}.{unknown[0]} is no registered section"
            f"{did_you_mean(unknown[0], registry, prefix)}"
        )
    return {key: _build(registry[key], value, f"{prefix}.{key}") for key, value in data.items()}


def config_from_dict(data: dict) -> Config:
    config = _build(Config, data, "")
    spec = config.spec()  # validates the spec
    if config.hypernet.generator_hidden is None:  # written out, so config.yaml says it
        config = config.replace(
            hypernet=dataclasses.replace(
                config.hypernet, generator_hidden=default_generator_hidden(len(spec.layers))
            )
        )
    check_config(
        len(config.hypernet.generator_hidden) == len(spec.layers),
        "hypernet.generator_hidden",
        f"needs one entry per target layer ({len(spec.layers)})",
    )
    check_config(
        config.objective.function_weight == 0
        or config.objective.function_images <= config.train.images_per_network,
        "objective.function_images",
        f"must be <= train.images_per_network ({config.train.images_per_network})",
    )
    sides = spec.input_shape[1:]
    check_config(
        config.objective.function_inputs != "shuffled_patches"
        or all(side % PATCH_GRID == 0 for side in sides),
        "objective.function_inputs",
        f"shuffled_patches needs image sides divisible by {PATCH_GRID}, not {sides[0]}x{sides[1]}",
    )
    return config


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key written twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise WeightgenError(
                    f"duplicate key {_shown(key)} (line {key_node.start_mark.line + 1})"
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str) -> Any:
    """YAML text -> data with the safe loader, duplicate keys refused."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


CONFIG_DIR = Path(__file__).parent / "configs"  # shipped with the package


def shipped_configs() -> list[str]:
    """Names of the configs shipped with weightgen (``fashion_mnist/mnfg``, ...)."""
    return sorted(
        p.relative_to(CONFIG_DIR).with_suffix("").as_posix() for p in CONFIG_DIR.rglob("*.yaml")
    )


def resolve_config(name: str | Path) -> Path:
    """A config file's path: ``name`` itself if it exists, else the shipped config of that
    name (``paper_lambda1e3``, ``fashion_mnist/mnfg``; ``.yaml`` and a leading ``configs/``
    optional)."""
    path = Path(name)
    if path.exists():
        return path
    key = path.as_posix().removesuffix(".yaml").removeprefix("configs/")
    if key in shipped_configs():
        return CONFIG_DIR / f"{key}.yaml"
    hint = did_you_mean(key, shipped_configs()) or " (shipped: weightgen configs)"
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:  # meant as a file
        raise WeightgenError(f"cannot read config {path}: no such file{hint}")
    raise WeightgenError(f"no config file or shipped config named {str(name)!r}{hint}")


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """``data`` with dotted ``KEY=VALUE`` overrides applied (``objective.lambda=3000``); each
    value is read as YAML, so ``train.adam_betas=[0.9,0.99]`` and ``data.ood=null`` work."""
    if not isinstance(data, dict):
        raise WeightgenError(f"config: the file must be a mapping, got {_shown(data)}")
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise WeightgenError(f"--set {item!r}: expected KEY=VALUE, like objective.lambda=3000")
        try:
            value = parse_yaml(text)
        except yaml.YAMLError:
            raise WeightgenError(f"--set {item!r}: the value is not valid YAML") from None
        *parents, last = key.split(".")
        node = data
        for depth, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise WeightgenError(
                    f"--set {item!r}: {'.'.join(parents[: depth + 1])} is not a section"
                )
            node = child
        node[last] = value
    return data


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read and validate a YAML config file (a path, or a shipped config's name), with
    dotted ``KEY=VALUE`` overrides applied before the checks."""
    path = resolve_config(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise WeightgenError(f"cannot read config {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise WeightgenError(f"config {path} is not UTF-8 text") from None
    try:
        data = parse_yaml(text)
    except WeightgenError as err:
        raise WeightgenError(f"config {path}: {err}") from None
    except yaml.YAMLError as err:
        raise WeightgenError(
            f"config {path} is not valid YAML: {str(err).splitlines()[0]}"
        ) from None
    if data is None:
        raise WeightgenError(f"config {path} is empty (see `weightgen configs` for examples)")
    return config_from_dict(apply_overrides(data, overrides) if overrides else data)


def save_config(config: Config, path: str | Path) -> None:
    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
