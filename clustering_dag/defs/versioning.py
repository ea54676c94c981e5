"""Code versions that follow the code (Dagster takes an asset's ``code_version`` as a string
someone keeps up to date by hand; here it is derived).

An asset's code version is a hash of what it runs, read from the source (nothing is imported):
its own function (decorators and type annotations aside), the functions it closes over, and every
project definition it reaches from there (functions, classes, constants, methods, in the Dagster
layer and the core alike, followed through the names each one uses), with the installed versions
of the numeric libraries those use (TensorFlow, scikit-learn, ...), since an upgrade can change
the numbers too. The unit is the definition, not the module: an edit to one core function changes
the versions of the assets that call it, directly or through other functions, and no others.

Helpers marked :func:`unversioned` (metadata for the UI, asset checks) are left out: they do not
change the stored value and run on every materialization anyway. So are the registries a module
names in ``__registries__`` (the spaces, the models): most code reads only their names, and the
assets that run their functions name those (``runs``) for their code versions. A function outside
the package (a user's own space) is followed through the names its code reads: its module's
functions and the libraries it uses. Sources are compared as syntax trees without docstrings, so a
comment, a docstring or a reformatting changes nothing; any edit to the code itself changes the
version of exactly the assets that run it. The cache key of every value includes its asset's code
version, so such an edit recomputes those assets and, through their new data versions, what lies
below them.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

PACKAGE = "clustering_dag"
CORE = f"{PACKAGE}.core"
PACKAGE_DIR = Path(__file__).resolve().parents[1]

# Import name -> distribution, for the libraries whose upgrades can change a computed value.
LIBRARIES = {
    "numpy": "numpy", "scipy": "scipy", "pandas": "pandas", "pyarrow": "pyarrow", "h5py": "h5py",
    "sklearn": "scikit-learn", "matplotlib": "matplotlib", "tensorflow": "tensorflow",
    "tensorflow_probability": "tensorflow-probability", "tf_keras": "tf-keras", "umap": "umap-learn",
}
# What a library computes with, unseen in the project's own imports: its version counts too.
STANDS_ON = {"umap-learn": ("numba", "llvmlite", "pynndescent")}


# Methods of the built-in types, which the Dagster layer calls on its own values.
BUILTIN_METHODS = frozenset(name for kind in (str, bytes, dict, list, set, tuple) for name in dir(kind))


def unversioned(fn: Callable) -> Callable:
    """Marks a helper that only describes a value (metadata for the UI, asset checks), which every
    run recomputes anyway: its code does not change the stored value, so it is left out of code
    versions."""
    fn.__unversioned__ = True
    return fn


def _is_unversioned(node: ast.AST) -> bool:
    return any(isinstance(d, ast.Name) and d.id == unversioned.__name__
               for d in getattr(node, "decorator_list", ()))


def module_file(module: str) -> Path | None:
    """The source file of a project module (``clustering_dag.core.vae`` -> ``core/vae.py``)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _imports(nodes) -> dict[str, tuple[str, str | None]]:
    """Local name -> (module, attribute) for the import statements among ``nodes``."""
    table = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:  # `import a.b` binds `a`; `import a.b as c` binds `c` to a.b
                module = alias.name if alias.asname else alias.name.split(".")[0]
                table[alias.asname or module] = (module, None)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                table[alias.asname or alias.name] = (node.module, alias.name)
    return table


def _module_level(tree: ast.Module):
    """The statements a module runs at import, nested blocks (``with``, ``if``, ``try``) included,
    function and class bodies not."""
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            todo.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))


@dataclass
class _Module:
    """One project module, parsed: its top-level definitions (functions, classes, constants), its
    import table, the statements it runs at import besides those, and its classes' methods."""

    name: str
    tree: ast.Module
    definitions: dict[str, ast.AST] = field(default_factory=dict)
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    body: list[ast.AST] = field(default_factory=list)
    methods: dict[str, list[tuple[str, ast.AST]]] = field(default_factory=dict)
    registries: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, name: str, source: str) -> _Module:
        tree = _strip_docstrings(ast.parse(source))
        statements = list(_module_level(tree))
        module = cls(name, tree, imports=_imports(statements))
        for node in statements:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                module.definitions[node.name] = node
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        module.definitions[target.id] = node
            elif not isinstance(node, ast.Import | ast.ImportFrom) and node in tree.body:
                module.body.append(node)  # e.g. environment set before an import
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple)
                    and any(getattr(t, "id", "") == "__registries__" for t in node.targets)):
                module.registries = frozenset(e.value for e in node.value.elts if isinstance(e, ast.Constant))
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        module.methods.setdefault(item.name, []).append((node.name, item))
        return module


class _Names(ast.NodeVisitor):
    """The free names a piece of code uses (read, and not bound inside it as a parameter, a local
    or a nested definition), the attributes it reads (``x.name``: a method or property, maybe, of
    a project class), and the imports it makes inside itself. Decorators and type annotations are
    not code that runs to make the value: skipped."""

    def __init__(self):
        self.loaded: set[str] = set()
        self.bound: set[str] = set()
        self.attributes: set[str] = set()
        self.of_name: dict[str, set[str]] = {}  # `figures.tsne_figure`: {"figures": {"tsne_figure"}}
        self.imports: list[ast.AST] = []

    @property
    def names(self) -> set[str]:
        return self.loaded - self.bound

    def visit_Name(self, node):
        (self.loaded if isinstance(node.ctx, ast.Load) else self.bound).add(node.id)

    def visit_Attribute(self, node):
        self.attributes.add(node.attr)
        if isinstance(node.value, ast.Name):
            self.of_name.setdefault(node.value.id, set()).add(node.attr)
        self.generic_visit(node)

    def visit_Import(self, node):
        self.imports.append(node)

    visit_ImportFrom = visit_Import

    def visit_arg(self, node):
        self.bound.add(node.arg)  # its annotation is skipped

    def visit_FunctionDef(self, node):
        self.bound.add(node.name)
        for child in (node.args, *node.body):
            self.visit(child)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_AnnAssign(self, node):
        for child in (node.target, node.value):
            if child is not None:
                self.visit(child)


class SourceVersions:
    """Derives code versions. ``sources`` maps a file to replacement text (for tests and for
    asking "what would this edit recompute?"); other files are read from disk. A replacement
    applies to what is read by module (top-level definitions and methods); the functions handed in
    are read as they are loaded.

    The unit is a definition: a function, a class, a constant, a method. What one runs is followed
    through the names it uses (``module.name`` included) and, since a method called on a value
    cannot be told from its name alone, through every method or property of a core class that
    bears the name of an attribute it reads (with that class's ``__init__`` and class body): more
    than it runs, never less. A definition that is included brings its module's import-time
    statements, and the versions of the libraries it uses.
    """

    def __init__(self, sources: Mapping[Path, str] | None = None):
        self._sources = {Path(k).resolve(): v for k, v in (sources or {}).items()}
        self._modules: dict[str, _Module | None] = {}
        # id(node) -> (node, its names, its hash); the node is kept so that its id is never reused
        self._visited: dict[int, tuple[ast.AST, _Names, str]] = {}
        self._core_methods: dict[str, list[tuple[_Module, str, ast.AST]]] | None = None

    # --- reading ------------------------------------------------------------------------------

    def _text(self, path: Path) -> str:
        return self._sources.get(path.resolve()) or path.read_text()

    def _module(self, name: str) -> _Module | None:
        if name not in self._modules:
            path = module_file(name)
            self._modules[name] = _Module.parse(name, self._text(path)) if path else None
        return self._modules[name]

    def _methods(self, attribute: str) -> list[tuple[_Module, str, ast.AST]]:
        """The methods (and properties) named ``attribute`` of every class in the core modules."""
        if self._core_methods is None:
            self._core_methods = {}
            for path in sorted((PACKAGE_DIR / "core").glob("*.py")):
                module = self._module(f"{CORE}.{path.stem}")
                for name, found in module.methods.items():
                    self._core_methods.setdefault(name, []).extend((module, c, m) for c, m in found)
        return self._core_methods.get(attribute, [])

    def _scan(self, node: ast.AST) -> tuple[_Names, str]:
        """The names ``node`` uses and the hash of its syntax tree (memoized)."""
        if id(node) not in self._visited:
            visitor = _Names()
            visitor.visit(node)
            self._visited[id(node)] = (node, visitor, _digest(ast.dump(node)))
        return self._visited[id(node)][1:]

    # --- what a function runs -----------------------------------------------------------------

    def components(self, fn: Callable) -> dict[str, str]:
        """What ``fn`` runs, as ``{component: hash}``: ``fn:<module>:<name>`` entries (functions,
        classes, constants, ``<Class>.<method>``, ``<module>`` for import-time statements) and
        ``lib:<distribution>`` entries."""
        found: dict[str, str] = {}
        self._function(fn, found)
        return dict(sorted(found.items()))

    def version(self, fn: Callable, runs: tuple[Callable, ...] = ()) -> str:
        found = {}
        for f in (fn, *runs):
            found.update(self.components(f))
        return _digest(repr(sorted(found.items())))[:12]

    def _function(self, fn: Callable, found: dict) -> None:
        ident = f"fn:{fn.__module__}:{fn.__qualname__}"
        if ident in found:
            return
        module = self._module(fn.__module__)
        if module is None:  # a user's function (a space of their own): followed through its globals
            self._outside(fn, found)
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):  # no source file (defined at a prompt): its bytecode stands in
            found[ident] = _digest(fn.__code__.co_code.hex() + repr(fn.__code__.co_consts))
            return
        try:
            node = ast.parse(textwrap.dedent(source)).body[0]
        except (SyntaxError, IndexError):  # a lambda in the middle of an expression
            found[ident] = _digest(source)
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.decorator_list = []
        node = _strip_docstrings(node)
        found[ident] = _digest(ast.dump(node))
        closure = {}
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            try:
                closure[name] = cell.cell_contents
            except ValueError:  # a cell not assigned yet
                pass
        self._follow(node, module, found, closure)

    def _outside(self, fn: Callable, found: dict) -> None:
        """What a function outside the package uses, by the names its code (nested code included)
        reads: the functions of its own module and of the package (followed in turn), and the
        libraries, imported at its module's top or inside it."""
        names, codes = set(), [fn.__code__]
        while codes:
            code = codes.pop()
            names |= set(code.co_names)
            codes += [c for c in code.co_consts if inspect.iscode(c)]
        for name in sorted(names):
            value = fn.__globals__.get(name)
            origin = (value.__name__ if inspect.ismodule(value)
                      else getattr(value, "__module__", None) or name)
            top = str(origin).split(".")[0]
            if top in LIBRARIES:
                _library(top, found)
            elif inspect.isfunction(value) and (value.__module__ == fn.__module__
                                                or value.__module__.startswith(PACKAGE)):
                if not getattr(value, "__unversioned__", False):
                    self._function(value, found)

    def _follow(self, node: ast.AST, module: _Module | None, found: dict,
                closure: Mapping | None = None) -> None:
        """Add what ``node`` (code of ``module``) uses to ``found``."""
        closure = closure or {}
        visitor, _ = self._scan(node)
        local_imports = _imports(visitor.imports)
        for name in sorted(visitor.names | set(local_imports)):
            used = visitor.of_name.get(name, set())
            if name in closure:
                value = closure[name]
                if (inspect.isfunction(value) and value.__module__.startswith(PACKAGE)
                        and not getattr(value, "__unversioned__", False)):
                    self._function(value, found)
            elif name in local_imports:
                self._imported(*local_imports[name], used, found)
            elif module is not None and name in module.imports:
                self._imported(*module.imports[name], used, found)
            elif module is not None and name in module.definitions:
                self._definition(module, name, found)
        attributes = visitor.attributes
        if module is None or not module.name.startswith(CORE):
            # The Dagster layer calls `str.encode`, `dict.get`, ...: not the core's methods that
            # share those names (the core's own calls are all followed).
            attributes = attributes - BUILTIN_METHODS
        for attribute in sorted(attributes):
            for owner, class_name, method in self._methods(attribute):
                self._method(owner, class_name, method, found)

    def _imported(self, source: str, attribute: str | None, used: set[str], found: dict) -> None:
        if attribute and module_file(f"{source}.{attribute}"):
            source, attribute = f"{source}.{attribute}", None  # `from package import module`
        top = source.split(".")[0]
        if top in LIBRARIES:
            _library(top, found)
        if not (source.startswith(PACKAGE) and module_file(source)):
            return
        module = self._module(source)
        if attribute is None:  # the module itself: what is read from it (`figures.tsne_figure`)
            names = used & set(module.definitions | module.imports) if used else set(module.definitions)
            for name in sorted(names):
                if name in module.definitions:
                    self._definition(module, name, found)
                else:
                    self._imported(*module.imports[name], set(), found)
        elif attribute in module.definitions:
            self._definition(module, attribute, found)
        elif attribute in module.imports:  # a name the module imports itself (re-exported)
            self._imported(*module.imports[attribute], set(), found)

    def _definition(self, module: _Module, name: str, found: dict) -> None:
        ident = f"fn:{module.name}:{name}"
        if ident in found:
            return
        node = module.definitions[name]
        if _is_unversioned(node) or name in module.registries:
            found[ident] = "unversioned"
            return
        found[ident] = self._scan(node)[1]
        self._module_body(module, found)
        self._follow(node, module, found)

    def _method(self, module: _Module, class_name: str, node: ast.AST, found: dict) -> None:
        ident = f"fn:{module.name}:{class_name}.{node.name}"
        if ident in found:
            return
        found[ident] = self._scan(node)[1]
        self._follow(node, module, found)
        cls = module.definitions[class_name]
        ident = f"fn:{module.name}:{class_name}.<class>"  # its class body and __init__
        if ident not in found:
            setup = [n for n in cls.body if not isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                     or n.name == "__init__"]
            found[ident] = _digest(repr([self._scan(n)[1] for n in setup]))
            self._module_body(module, found)
            for part in setup:
                self._follow(part, module, found)

    def _module_body(self, module: _Module, found: dict) -> None:
        ident = f"fn:{module.name}:<module>"
        if ident not in found:
            found[ident] = _digest(repr([self._scan(n)[1] for n in module.body]))
            for part in module.body:
                self._follow(part, module, found)


def _library(import_name: str, found: dict) -> None:
    """The installed versions of the library imported as ``import_name`` and of what it stands on."""
    distribution = LIBRARIES[import_name]
    for name in (distribution, *STANDS_ON.get(distribution, ())):
        found[f"lib:{name}"] = _library_version(name)


@cache
def _library_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


_on_disk = SourceVersions()


def source_version(fn: Callable, runs: tuple[Callable, ...] = ()) -> str:
    """The code version of an asset whose computation is ``fn`` (see the module docstring).
    ``runs``: functions the asset calls to make its value that its source does not name (a
    resource's methods, a registry's functions)."""
    return _on_disk.version(fn, tuple(runs))
