"""NAS over ResNeXt cardinality, width and depth: command lines, Ray Tune orchestration, analysis."""

from search_spaces import Architecture, build_model, load_architecture

__all__ = ["Architecture", "build_model", "load_architecture"]
