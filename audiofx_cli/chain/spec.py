"""Chain specs: YAML (safe loading only) -> validated `ChainSpec`, errors with file:line.

    name: vocal                # optional
    description: clean-up      # optional
    stages:
      - highpass: {cutoff_hz: 80, order: 2}
      - dc_remove              # a bare name means default parameters

Validation happens in two steps: `parse_spec` checks everything that does not depend on the
sample rate (names, keys, types, static ranges); `check_rate` checks what does (Nyquist), once
the input's rate is known. Torch is never imported here.

Numbers follow the YAML 1.2 core schema (`1e-3`, `8e1`, `+5`, `.5` are numbers; see
`parse_scalar`, the function inline options should use too). Limits, each refused with one line
before the work it would cause: a chain file is at most `MAX_CHAIN_BYTES`; with aliases followed
it has at most `chain.yaml_core.MAX_YAML_NODES` nodes and `MAX_YAML_DEPTH` levels, at most
`MAX_STAGES` stages in all and `parallel` nested at most `MAX_NESTING` deep.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audiofx_cli.chain.learn import LEARN_KEY, parse_learn
from audiofx_cli.chain.params import REQUIRED, StageDef
from audiofx_cli.chain.presets import find_preset, shipped_dir, shipped_presets
from audiofx_cli.chain.registry import get_stage, registry, suggest
from audiofx_cli.chain.yaml_core import ChainDumper, ChainLoader, check_document_size
from audiofx_cli.chain.yaml_core import parse_scalar as parse_scalar  # public: inline options
from audiofx_cli.errors import ChainSpecError, ParamError, UsageError, short_text
from audiofx_cli.io.chain_files import MAX_CHAIN_FILE_SAMPLES, file_samples, read_text_file
from audiofx_cli.io.urls import URLPath, is_url, location, read_text

TOP_LEVEL_KEYS = ("name", "description", "stages")
MAX_CHAIN_BYTES = 1 << 20  # a chain file is read only up to 1 MiB
MAX_STAGES = 1_000  # stages in a chain, those inside parallel branches included
MAX_NESTING = 8  # parallel inside parallel ... at most this deep
_PLAIN_TAGS = {
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")
}


@dataclass
class StageSpec:
    """One validated stage: its name, full parameters (defaults filled) and where it came from."""

    name: str
    params: dict[str, Any]
    label: str
    source: str | None = None
    line: int | None = None
    column: int | None = None
    key_marks: dict[str, tuple[int, int]] = field(default_factory=dict)
    given: tuple[str, ...] = ()
    learn: tuple[str, ...] = ()  # keys that learn (`learn:`, see audiofx_cli.chain.learn)

    @property
    def definition(self) -> StageDef:
        stage = get_stage(self.name)
        assert stage is not None  # parse_spec only creates known stages
        return stage

    def error(self, key: str | None, message: str) -> ChainSpecError:
        """A ChainSpecError located at `key` (or at the stage when key is None or unknown)."""
        line, column = (
            self.key_marks.get(key, (self.line, self.column)) if key else (self.line, self.column)
        )
        return ChainSpecError(
            message, source=self.source, line=line, column=column, stage=self.label, key=key
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-able form: {name: params} with nested branches expanded."""
        params: dict[str, Any] = {}
        for key, value in self.params.items():
            if key == "branches":
                value = [[s.to_dict() for s in branch] for branch in value]
            params[key] = value
        if self.learn:
            params[LEARN_KEY] = list(self.learn)
        return {self.name: params}


@dataclass
class ChainSpec:
    """A parsed chain: stages in order plus optional name and description."""

    stages: list[StageSpec]
    name: str | None = None
    description: str | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.name:
            out["name"] = self.name
        if self.description:
            out["description"] = self.description
        out["stages"] = [s.to_dict() for s in self.stages]
        return out


# ---------------------------------------------------------------------------- presets
def presets_dir() -> Path:
    """The folder of the presets shipped with audiofx."""
    return shipped_dir()


def preset_names() -> list[str]:
    """The names of the shipped presets (user presets: `chain.presets.user_presets`)."""
    return sorted(shipped_presets())


def resolve_chain(chain: str | Path) -> tuple[Path, str]:
    """Find a chain file: an existing path first, else a preset (shipped or the user's, see
    `chain.presets`). Returns (path, label)."""
    path = Path(chain)
    if path.is_file():
        return path, str(chain)
    text = str(chain)
    if path.exists():
        raise UsageError(f"chain {text} is not a file")
    if path.suffix.lower() in (".yaml", ".yml") or "/" in text or "\\" in text:
        raise UsageError(f"chain file not found: {text}")
    preset = find_preset(text)
    return preset.path, preset.label


def is_inline_yaml(chain: str | Path) -> bool:
    """`--chain '[{highpass: {cutoff_hz: 80}}]'`: YAML text given where a file name goes."""
    text = str(chain).lstrip()
    return text.startswith(("[", "{")) or "\n" in text


# ---------------------------------------------------------------------------- parsing
class _Parser:
    """Walks the composed YAML node tree, keeping marks for every key."""

    def __init__(self, text: str, source: str, base_dir: Path) -> None:
        self.text = text
        self.source = source
        self.base_dir = base_dir
        self.loader = ChainLoader(text)
        self.stage_count = 0
        self.file_samples = 0  # taps and IR samples of the files named so far

    def fail(self, node: yaml.Node | None, message: str, **where: Any) -> ChainSpecError:
        line, column = _mark(node)
        return ChainSpecError(message, source=self.source, line=line, column=column, **where)

    def value(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            raise self.fail(node, f"invalid YAML: {exc.problem or exc.context}") from None
        except (ValueError, TypeError, KeyError, OverflowError) as exc:  # e.g. `!!binary %`
            raise self.fail(node, f"invalid YAML value: {short_text(str(exc))}") from None

    def mapping(
        self, node: yaml.MappingNode, **where: Any
    ) -> list[tuple[str, yaml.Node, yaml.Node]]:
        items, seen = [], set()
        for key_node, value_node in node.value:
            key = self.value(key_node)
            if not isinstance(key, str):
                raise self.fail(key_node, f"keys must be strings, got {short_text(key)}", **where)
            if key in seen:
                raise self.fail(key_node, f"duplicate key '{short_text(key)}'", **where)
            seen.add(key)
            items.append((key, key_node, value_node))
        return items

    def parse(self) -> ChainSpec:
        try:
            check_document_size(self.text, self.source)
            root = self.loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            column = mark.column + 1 if mark else None
            problem = exc.problem or exc.context or "invalid YAML"
            raise ChainSpecError(
                f"invalid YAML: {problem}", source=self.source, line=line, column=column
            ) from None
        except yaml.reader.ReaderError as exc:  # a character YAML does not allow
            before = self.text[: exc.position]
            line, column = before.count("\n") + 1, len(before) - before.rfind("\n")
            raise ChainSpecError(
                f"invalid YAML: character {short_text(chr(exc.character))} "
                f"(#x{exc.character:04x}) is not allowed",
                source=self.source,
                line=line,
                column=column,
            ) from None
        except yaml.YAMLError as exc:
            message = short_text(" ".join(str(exc).split()), 200)
            raise ChainSpecError(f"invalid YAML: {message}", source=self.source) from None
        if root is None:
            raise ChainSpecError("the chain file is empty (expected 'stages:')", source=self.source)
        self.check_tags(root)
        name = description = None
        if isinstance(root, yaml.SequenceNode):
            stages_node: yaml.Node = root
        elif isinstance(root, yaml.MappingNode):
            found: dict[str, yaml.Node] = {}
            for key, key_node, value_node in self.mapping(root):
                if key not in TOP_LEVEL_KEYS:
                    hint = suggest(key, list(TOP_LEVEL_KEYS))
                    raise self.fail(
                        key_node,
                        f"unknown top-level key '{short_text(key)}'{hint}; allowed: "
                        + ", ".join(TOP_LEVEL_KEYS),
                    )
                found[key] = value_node
            if "stages" not in found:
                raise self.fail(root, "missing 'stages:' (a list of stages)")
            stages_node = found["stages"]
            for key in ("name", "description"):
                if key in found:
                    value = self.value(found[key])
                    if value is not None and not isinstance(value, (str, int, float)):
                        raise self.fail(found[key], f"'{key}' must be text")
                    if key == "name":
                        name = None if value is None else str(value)
                    else:
                        description = None if value is None else str(value)
        else:
            raise self.fail(root, "a chain must be a mapping with 'stages:' (or a list of stages)")
        stages = self.stage_list(stages_node, prefix="")
        return ChainSpec(stages=stages, name=name, description=description, source=self.source)

    def check_tags(self, node: yaml.Node) -> None:
        """Only plain YAML types: no !!python/... or custom tags, ever."""
        if node.tag not in _PLAIN_TAGS:
            raise self.fail(node, f"YAML tag {node.tag} is not allowed in a chain file")
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                self.check_tags(child)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self.check_tags(key)
                self.check_tags(value)

    def stage_list(self, node: yaml.Node, prefix: str, nesting: int = 0) -> list[StageSpec]:
        if isinstance(node, yaml.ScalarNode) and self.value(node) is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{prefix or 'stages'} must be a list of stages")
        return [
            self.stage(item, f"{prefix}stage {i}", nesting) for i, item in enumerate(node.value, 1)
        ]

    def stage(self, node: yaml.Node, label: str, nesting: int = 0) -> StageSpec:
        self.stage_count += 1
        if self.stage_count > MAX_STAGES:
            raise self.fail(
                node, f"{label}: more than {MAX_STAGES} stages in the chain (aliases followed)"
            )
        params_node: yaml.Node | None = None
        if isinstance(node, yaml.ScalarNode):
            name = self.value(node)
            name_node = node
        elif isinstance(node, yaml.MappingNode) and len(node.value) == 1:
            name_node, params_node = node.value[0]
            name = self.value(name_node)
        else:
            raise self.fail(
                node, f"{label}: each stage is 'name' or a one-key mapping 'name: {{params}}'"
            )
        if not isinstance(name, str):
            raise self.fail(name_node, f"{label}: stage name must be text, got {short_text(name)}")
        stage_def = get_stage(name)
        if stage_def is None:
            raise self.fail(
                name_node,
                f"unknown stage '{short_text(name)}'{suggest(name[:100])}; "
                "`audiofx stages` lists them",
                stage=label,
            )
        label = f"{label} '{name}'"
        line, column = _mark(name_node)
        spec = StageSpec(name, {}, label, self.source, line, column)
        raw: dict[str, tuple[Any, yaml.Node]] = {}
        learn_node: yaml.Node | None = None
        if params_node is not None and not (
            isinstance(params_node, yaml.ScalarNode) and self.value(params_node) is None
        ):
            if not isinstance(params_node, yaml.MappingNode):
                raise spec.error(None, "parameters must be a mapping {key: value}")
            for key, key_node, value_node in self.mapping(params_node, stage=label):
                spec.key_marks[key] = spec.key_marks[short_text(key)] = _mark(key_node)
                if key == LEARN_KEY and stage_def.param(key) is None:
                    learn_node = value_node
                    continue
                if stage_def.param(key) is None:
                    allowed = ", ".join(p.name for p in stage_def.params)
                    hint = suggest(key[:100], [p.name for p in stage_def.params])
                    raise spec.error(
                        short_text(key), f"unknown key{hint}; '{name}' takes: {allowed}"
                    )
                raw[key] = (None, value_node)
        spec.given = tuple(raw)
        for param in stage_def.params:
            if param.name not in raw:
                if param.default is REQUIRED:
                    raise spec.error(
                        None,
                        f"missing required key '{param.name}' "
                        f"({param.doc}{', ' + param.unit if param.unit else ''})",
                    )
                spec.params[param.name] = copy.deepcopy(param.default)
                continue
            value_node = raw[param.name][1]
            if param.kind == "branches":
                if nesting >= MAX_NESTING:
                    raise spec.error(
                        param.name, f"parallel stages nested more than {MAX_NESTING} deep"
                    )
                spec.params[param.name] = self.branches(value_node, spec, nesting + 1)
                continue
            try:
                value = param.coerce(self.value(value_node))
            except ParamError as exc:
                raise spec.error(param.name, exc.message) from None
            if param.kind == "path" and value is not None:
                value = (
                    str((self.base_dir / value).resolve())
                    if not Path(value).is_absolute()
                    else value
                )
            spec.params[param.name] = value
        try:
            stage_def.check(spec.params, None)
            self.count_file_samples(stage_def, spec)
        except ParamError as exc:
            raise spec.error(exc.key, exc.message) from None
        if learn_node is not None:
            spec.learn = parse_learn(self.value(learn_node), spec)
        return spec

    def count_file_samples(self, stage_def: StageDef, spec: StageSpec) -> None:
        """Add the numbers in the files this stage names to the chain's total (bounded)."""
        for param in stage_def.params:
            path = spec.params.get(param.name) if param.kind == "path" else None
            if path is None:
                continue
            self.file_samples += file_samples(path, param.name)
            if self.file_samples > MAX_CHAIN_FILE_SAMPLES:
                raise ParamError(
                    param.name,
                    f"the files this chain names hold more than {MAX_CHAIN_FILE_SAMPLES:,} "
                    "taps and samples in all",
                )

    def branches(self, node: yaml.Node, parent: StageSpec, nesting: int) -> list[list[StageSpec]]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise parent.error("branches", "expected a non-empty list of stage lists")
        out = []
        for i, branch in enumerate(node.value, 1):
            if not isinstance(branch, yaml.SequenceNode):
                raise self.fail(branch, f"{parent.label}: branch {i} must be a list of stages")
            out.append(
                self.stage_list(branch, prefix=f"{parent.label} > branch {i} > ", nesting=nesting)
            )
        return out


def _mark(node: yaml.Node | None) -> tuple[int | None, int | None]:
    if node is None:
        return None, None
    return node.start_mark.line + 1, node.start_mark.column + 1


def parse_spec(text: str, source: str = "<chain>", base_dir: Path | None = None) -> ChainSpec:
    """Parse and validate YAML text (everything but rate-dependent checks).

    Raises:
        ChainSpecError: with source:line:column, stage and key.
    """
    return _Parser(text, source, base_dir or Path.cwd()).parse()


def load_spec(chain: str | Path) -> ChainSpec:
    """Load a chain by path or preset name and validate it (except rate-dependent checks).

    Example:
        >>> spec = load_spec("vocal")
        >>> [s.name for s in spec.stages][:2]
        ['highpass', 'peaking']
    """
    if is_url(chain):  # files the chain names resolve from the current folder
        url = location(chain)
        assert isinstance(url, URLPath)
        return parse_spec(read_text(url, MAX_CHAIN_BYTES), source=str(url))
    if not Path(chain).exists() and is_inline_yaml(chain):  # files resolve from here
        return parse_spec(str(chain), source="--chain")
    path, label = resolve_chain(chain)
    try:
        text = read_text_file(path, MAX_CHAIN_BYTES, what="chain file")
    except ParamError as exc:
        raise UsageError(f"cannot read chain {label}: {exc.message}") from None
    return parse_spec(text, source=label, base_dir=path.resolve().parent)


def spec_from_stages(stages: list[Any], name: str | None = None) -> ChainSpec:
    """Build a validated spec from Python objects in the YAML form, e.g.
    ``[{"highpass": {"cutoff_hz": 80}}, "dc_remove"]``."""
    text = yaml.dump({"name": name, "stages": stages}, Dumper=ChainDumper, sort_keys=False)
    return parse_spec(text, source="<python>")


def check_rate(spec: ChainSpec | list[StageSpec], sample_rate: float) -> float:
    """Rate-dependent validation (Nyquist and per-stage checks). Returns the output rate.

    Raises:
        ChainSpecError: naming the stage, key and the rate.
    """
    stages = spec.stages if isinstance(spec, ChainSpec) else spec
    rate = float(sample_rate)
    for stage in stages:
        stage_def = stage.definition
        try:
            for param in stage_def.params:
                param.check_nyquist(stage.params[param.name], rate)
            stage_def.check(stage.params, rate)
        except ParamError as exc:
            raise stage.error(exc.key, exc.message) from None
        for branch in stage.params.get("branches") or []:
            if stage_def.param("branches") is not None:
                check_rate(branch, rate)
        rate = stage_def.output_rate(stage.params, rate)
    return rate


def all_stage_names() -> list[str]:
    return list(registry())
