"""Test inputs written inline as file trees (in the spirit of copier's build_file_tree)."""

from __future__ import annotations

from pathlib import Path


def build_tree(root: Path, tree: dict) -> Path:
    """Write a folder from a dict: str/bytes values are files, dict values are folders."""
    root.mkdir(parents=True, exist_ok=True)
    for name, value in tree.items():
        path = root / name
        if isinstance(value, dict):
            build_tree(path, value)
        elif isinstance(value, bytes):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(value)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(value, encoding="utf-8")
    return root
