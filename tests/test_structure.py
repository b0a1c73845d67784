"""The package's walls, read from its source: no import cycles, the engine's name read in one
module, compute modules free of the Config."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "videostyle"


def _modules() -> dict[str, ast.Module]:
    out = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(p.read_text(), str(p))
    return out


def _type_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.Module, modules: set[str]) -> set[str]:
    """The package's modules that ``tree`` imports anywhere (inside functions too), except
    under ``if TYPE_CHECKING``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_only(node):
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in modules and m != "videostyle"}


def test_no_import_cycles():
    mods = _modules()
    graph = {m: _imports(t, set(mods)) - {m} for m, t in mods.items()}
    state: dict[str, int] = {}

    def walk(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            assert state.get(n) != 1, "import cycle: " + " -> ".join(path[path.index(n):] + [n] if n in path else path + [n])
            if n not in state:
                walk(n, path + [n])
        state[m] = 2

    for m in mods:
        if m not in state:
            walk(m, [m])


def test_the_engine_name_is_read_in_the_factory_only():
    """The Config's engine name (``fast.method``) is read by the builder alone, which puts it in
    the engine's spec; the table of engine types by name is looked up in the factory alone."""
    readers, lookups = set(), set()
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "method" and \
                    isinstance(node.value, ast.Attribute) and node.value.attr == "fast":
                readers.add(name)
            if isinstance(node, ast.Name) and node.id == "ENGINE_TYPES":
                lookups.add(name)
    assert readers == {"videostyle.engines"}
    assert lookups == {"videostyle.factory"}


def test_compute_modules_import_no_config():
    mods = _modules()
    compute = [m for m in mods if m.split(".")[1:2] and m.split(".")[1] in
               ("gatys", "fast", "io", "engine", "device", "assets", "temporal")] + ["videostyle.render.policy"]
    assert len(compute) > 15
    for m in compute:
        assert "videostyle.config" not in _imports(mods[m], set(mods)), f"{m} imports the Config"


def test_the_config_is_imported_by_the_builder_and_the_front_ends_only():
    """The builder translates the Config once; besides it only the front ends that fill the
    Config (the API, the CLI's flags and commands, the studio's jobs, the batch planner) import it."""
    mods = _modules()
    importers = {m for m, t in mods.items() if "videostyle.config" in _imports(t, set(mods))}
    assert importers <= {"videostyle.engines", "videostyle.api", "videostyle.cli.flags", "videostyle.cli.commands",
                         "videostyle.studio.jobs", "videostyle.render.batch"}, importers


def test_render_jobs_take_a_render_spec_not_the_config():
    """No render job names the Config, not even for its type hints, or takes a ``cfg``: each takes
    the frozen ``RenderSpec`` the builder made (the batch planner, which fills Configs, aside)."""
    mods = _modules()
    for m in (m for m in mods if m.startswith("videostyle.render.") and m != "videostyle.render.batch"):
        found = set()
        for node in ast.walk(mods[m]):
            if isinstance(node, ast.ImportFrom) and node.module and "config" in node.module.split("."):
                found.add(f"imports {node.module}")
            if isinstance(node, ast.arg) and (node.arg == "cfg" or "Config" in ast.unparse(node.annotation or ast.Pass())):
                found.add(f"takes {node.arg}")
            if isinstance(node, ast.Attribute) and node.attr == "cfg":
                found.add("reads .cfg")
        assert not found, f"{m}: {sorted(found)}"


def test_the_front_ends_reach_the_core_through_the_api_only():
    """The CLI, the studio, the demo and the preview call the public API (``videostyle.api``) and
    nothing else of the core: no render job, builder, factory, engine or metric (shared helpers
    such as the io wing, the config, the events and a time parser are not the core)."""
    mods = _modules()
    fronts = [m for m in mods if m.startswith(("videostyle.cli", "videostyle.studio"))] + ["videostyle.preview"]
    core = ("videostyle.render", "videostyle.engines", "videostyle.factory", "videostyle.gatys", "videostyle.fast",
            "videostyle.metrics", "videostyle.temporal.flow", "videostyle.temporal.regions", "videostyle.temporal.paint")
    assert len(fronts) >= 10
    for m in fronts:
        reached = {i for i in _imports(mods[m], set(mods)) if i.startswith(core)}
        assert not reached, f"{m} reaches into {sorted(reached)}"


def test_temporal_is_the_layer_below_the_engines_and_the_policy_sits_above_them():
    """``temporal/`` is pure flow, keyframe, painting and region code: it imports no engine, no
    builder and nothing of the render layer. The policy takes its engine handed in: it imports
    neither the builder nor the work folder."""
    mods = _modules()
    above = {"videostyle.engines", "videostyle.engine", "videostyle.config"} | {m for m in mods if ".render" in m
                                                                              or ".gatys" in m or ".fast" in m}
    for m in (m for m in mods if m.startswith("videostyle.temporal")):
        assert not _imports(mods[m], set(mods)) & above, f"{m} imports {_imports(mods[m], set(mods)) & above}"
    policy = _imports(mods["videostyle.render.policy"], set(mods))
    assert not policy & {"videostyle.engines", "videostyle.io.workdir", "videostyle.config"}, policy


def test_the_video_policy_has_no_public_mutable_state():
    """Every attribute the policy sets is private (``self._x``); what its jobs read are properties."""
    tree = _modules()["videostyle.render.policy"]
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "VideoStylizer")
    public = sorted({ast.unparse(t) for n in ast.walk(cls) if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign))
                     for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                     if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
                     and not t.attr.startswith("_")})
    assert not public, public



def test_modules_and_functions_stay_small():
    for p in [*PACKAGE.rglob("*.py"), *(PACKAGE.parent / "benchmarks").rglob("*.py")]:
        text = p.read_text()
        assert len(text.splitlines()) <= 500, f"{p.name} has {len(text.splitlines())} lines"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                assert n <= 80, f"{p.name}:{node.name} has {n} lines"


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring constants in ``tree`` (prose, not a container's name)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def test_container_extensions_are_named_in_the_container_table_only():
    """A string in the code that names a container by its extension (".mkv", "use a .mp4 ..."),
    outside io/containers.py, is a second list that will disagree with the table; file names
    ("bunny.mp4") and docstrings are not lists."""
    import re

    from videostyle.io.containers import BY_EXTENSION

    pattern = re.compile(r"(?<![\w/%])(" + "|".join(re.escape(e) for e in BY_EXTENSION) + r")\b")
    found = []
    for name, tree in _modules().items():
        if name == "videostyle.io.containers":
            continue
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                if pattern.search(node.value):
                    found.append(f"{name}:{node.lineno}: {node.value[:60]!r}")
    assert not found, "\n".join(found)


def test_every_engine_implements_the_whole_protocol():
    """No engine method refuses its call (raises TypeError): an engine implements the protocol
    in full, and the callers need not know which engine they hold to call it."""
    from videostyle.engine import Engine

    methods = {n for n, v in vars(Engine).items() if callable(v) and not n.startswith("_")}
    refusing = []
    for name in ("videostyle.gatys.engine", "videostyle.fast.engine", "videostyle.engines"):
        for cls in ast.walk(_modules()[name]):
            if isinstance(cls, ast.ClassDef) and cls.name.endswith("Engine"):
                defined = {f.name for f in cls.body if isinstance(f, ast.FunctionDef)}
                assert methods <= defined, f"{cls.name} lacks {sorted(methods - defined)}"
                for f in cls.body:
                    if isinstance(f, ast.FunctionDef) and any(
                            isinstance(n, ast.Raise) and "TypeError" in ast.unparse(n) for n in ast.walk(f)):
                        refusing.append(f"{cls.name}.{f.name}")
    assert not refusing, refusing


def test_the_video_policy_is_driven_by_its_methods_only():
    """No job sets the per-frame policy's state (``vs.x = ...``, ``self.vs.x = ...``) from outside
    its module: a resume, a painted pass and the stage times go through its methods."""
    def is_policy(node: ast.AST) -> bool:
        return (isinstance(node, ast.Name) and node.id == "vs") or \
            (isinstance(node, ast.Attribute) and node.attr == "vs")

    found = []
    for name, tree in _modules().items():
        if name == "videostyle.render.policy":
            continue
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            for t in targets:
                for sub in ast.walk(t):
                    if isinstance(sub, ast.Attribute) and is_policy(sub.value):
                        found.append(f"{name}:{node.lineno}: {ast.unparse(t)}")
    assert not found, "\n".join(found)


def _flag_in(text: str) -> bool:
    import re

    return re.search(r"(?<![\w-])--[a-z]|(?<![\w-])-[oy]\b", text) is not None


def test_errors_below_the_front_ends_name_settings_not_flags():
    """An error raised outside the command line and the studio names a setting with
    ``errors.setting`` (the command line words it as a flag, the API as a keyword), never a flag;
    and every setting it names is one (a flat config name, or a command's own option)."""
    from videostyle import config as C
    from videostyle.errors import OPTIONS

    flagged, unknown = [], []
    for name, tree in _modules().items():
        front = name.startswith(("videostyle.cli", "videostyle.studio")) or name == "videostyle.preview"
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None and not front:
                for c in ast.walk(node.exc):
                    if isinstance(c, ast.Constant) and isinstance(c.value, str) and _flag_in(c.value):
                        flagged.append(f"{name}:{node.lineno}: {c.value[:60]!r}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setting" and node.args and \
                    isinstance(node.args[0], ast.Constant) and node.args[0].value not in set(C.FLAT) | set(OPTIONS):
                unknown.append(f"{name}:{node.lineno}: {node.args[0].value}")
    assert not flagged, "\n".join(flagged)
    assert not unknown, "\n".join(unknown)


def _our_flags() -> set[str]:
    """Every option string of the command line's parser and its subcommands."""
    import argparse

    from videostyle.cli import build_parser

    found: set[str] = set()

    def collect(p: argparse.ArgumentParser) -> None:
        for a in p._actions:
            found.update(o for o in a.option_strings if o.startswith("--"))
            if isinstance(a, argparse._SubParsersAction):
                for sub in a.choices.values():
                    collect(sub)

    collect(build_parser())
    return found - {"--help"}


def test_no_message_below_the_front_ends_names_a_flag():
    """Not only errors: a notice, a warning, an estimate's suggestion made below the front ends
    names its settings with ``errors.setting`` (a front end words them), never as a flag of the
    command line (docstrings, comments and the config's flag help aside)."""
    import re

    flags = _our_flags()
    assert {"--size", "--restart", "--overwrite", "--paint"} <= flags
    found = []
    for name, tree in _modules().items():
        if name.startswith(("videostyle.cli", "videostyle.studio")) or name in ("videostyle.preview", "videostyle.config",
                                                                               "videostyle.errors"):
            continue
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body
                and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", node.value)) & flags
                if named:
                    found.append(f"{name}:{node.lineno}: {sorted(named)} in {node.value[:60]!r}")
    assert not found, "\n".join(found)


def test_every_output_is_a_frame_sink():
    """A video file, a pipe and an image sequence take their frames through one interface
    (``io.sink.FrameSink``), with the same signatures."""
    import inspect

    from videostyle.io.frames_out import SequenceWriter
    from videostyle.io.mux import VideoWriter
    from videostyle.io.sink import FrameSink

    wanted = {n: inspect.signature(getattr(FrameSink, n)) for n in ("write", "finish", "abort")}
    for cls in (VideoWriter, SequenceWriter):
        for name, sig in wanted.items():
            got = inspect.signature(getattr(cls, name))
            assert list(got.parameters) == list(sig.parameters), (cls.__name__, name, got)
            assert got.return_annotation == sig.return_annotation, (cls.__name__, name, got)


def test_benchmarks_and_figures_edit_no_import_path_and_scripts_hold_tools_only():
    """Benchmarks are scenarios of ``python -m benchmarks``, the docs' figures its ``figure``
    command, checks are tests: none edits ``sys.path``, and ``scripts/`` keeps only what is none
    of those (the GPU machine's preparation and its one call)."""
    root = PACKAGE.parent
    for p in [*(root / "benchmarks").rglob("*.py"), *(root / "scripts").rglob("*.py")]:
        assert "sys.path" not in p.read_text(), p
    assert sorted(p.name for p in (root / "scripts").iterdir()) == ["gpu_check.sh", "gpu_prepare.sh"]
