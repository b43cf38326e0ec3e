"""Register the student with transformers' Auto classes without importing torch at ``import llm2ctr``.

Importing torch + transformers costs seconds, which every CLI call (even ``--help``) would pay.
Instead: if transformers' auto-modelling module is already loaded, register now; otherwise hook
its import so registration runs right after it loads, i.e. before the user can call
``AutoModel.from_pretrained`` (a post-import hook in the style of ``wrapt.when_imported``).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

_TARGET = "transformers.models.auto.modeling_auto"


def _register() -> None:
    from llm2ctr.student.modeling import register_auto_classes

    register_auto_classes()


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        _register()


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)  # one shot; let the normal finders locate the module
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    if _TARGET in sys.modules:
        _register()
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
