"""The catalogue: official requirements, measures and questions, written by us.

Rule: every YAML file in this folder is one ``schema.Catalogue``; items carry the official
id and source URL of the instrument they come from, but titles and texts are our own short
Dutch wording (the official texts stay upstream; see docs/decisions/ethics-catalogue.md).
Keys are unique across all files. This module only reads.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from idsp.errors import UserError

from legal_ethics.schema import Catalogue, CatalogueItem
from legal_ethics.storage import parse_model, read_yaml

CATALOGUE_DIR = Path(__file__).parent


@cache
def catalogues() -> tuple[Catalogue, ...]:
    out = []
    for path in sorted(CATALOGUE_DIR.glob("*.yaml")):
        out.append(parse_model(Catalogue, read_yaml(path, what="catalogue"), path=path, what="catalogue"))
    keys: dict[str, str] = {}
    for cat in out:
        for item in cat.items:
            if item.key in keys:
                raise UserError(f"catalogue key {item.key} is in both {keys[item.key]} and {cat.id}")
            keys[item.key] = cat.id
    return tuple(out)


@cache
def items() -> dict[str, CatalogueItem]:
    return {item.key: item for cat in catalogues() for item in cat.items}


def get(key: str) -> CatalogueItem:
    try:
        return items()[key]
    except KeyError:
        raise UserError(f"no catalogue item {key!r}", fix="See `idsp ethics catalogue list`") from None


def by_official_id() -> dict[str, CatalogueItem]:
    return {i.official_id: i for i in items().values() if i.official_id}


def catalogue(cat_id: str) -> Catalogue:
    for cat in catalogues():
        if cat.id == cat_id:
            return cat
    raise UserError(f"no catalogue {cat_id!r}", fix="See `idsp ethics catalogue list`")


def versions() -> dict[str, str]:
    return {c.id: c.version for c in catalogues()}
