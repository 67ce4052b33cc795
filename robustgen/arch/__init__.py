"""Architectures: a registry of timm models configured as the study used them (see registry.py)."""
from robustgen.arch.contract import LogitsOf, check_classifier
from robustgen.arch.registry import (ARCHS, ArchSpec, build_arch, count_parameters, create_arch, get_spec, list_archs,
                                     register_arch)

__all__ = ["ARCHS", "ArchSpec", "LogitsOf", "build_arch", "check_classifier", "count_parameters", "create_arch",
           "get_spec", "list_archs", "register_arch"]
