"""Simulators with known truth and offline loaders.

Every public function is named ``make_*`` (simulators) or ``load_*`` (data shipped in
an installed package; nothing is downloaded). Each family keeps its simulators in a
private module ``fstat/datasets/_<family>.py`` that lists them in ``__all__``; this
package re-exports whatever those modules list, so adding a family adds no edits here.
Simulator modules use numpy only (no torch), and take ``random_state``.
"""

import importlib
import pkgutil

__all__ = []


def _collect():
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") or info.name.startswith("__"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name in getattr(module, "__all__", ()):
            if not name.startswith(("make_", "load_")):
                raise ImportError(
                    f"{module.__name__} exports {name!r}; dataset functions are named "
                    "make_* or load_*."
                )
            globals()[name] = getattr(module, name)
            __all__.append(name)


_collect()
__all__.sort()
