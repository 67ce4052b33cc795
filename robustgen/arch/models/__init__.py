"""One module per architecture family; importing this package registers them all.

Modules are discovered rather than listed so that adding an architecture is one new file.
"""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
