"""Fixtures for the platform service: a case index with two cases and the service on a thread."""

from __future__ import annotations

import pytest
import yaml

from tests.service.servicekit import ServedService, user_model

TOKENS = {
    # alice is named in the index for ce-1 (her hub group case-ce-1 alone would not make her a
    # member: the service's registry decides); bob is named in the index for ce-2
    "tok-alice": user_model("alice", ["case-ce-1", "inspectorate-ilt"]),
    "tok-bob": user_model("bob", ["inspectorate-nvwa"]),
    "tok-mallory": user_model("mallory", [], scopes=()),  # the hub did not grant the service
    "tok-culler": user_model("idle-culler", [], kind="service"),
}


@pytest.fixture
def case_index(tmp_path):
    root = tmp_path / "cases"
    for case_id in ("ce-1", "ce-2"):
        (root / case_id).mkdir(parents=True)
    index = tmp_path / "index.yaml"
    index.write_text(
        yaml.safe_dump(
            {
                "cases": [
                    {
                        "id": "ce-1",
                        "path": str(root / "ce-1"),
                        "title": "CE-markering speelgoed",
                        "zaaknummer": "Z-1",
                        "members": ["alice"],
                    },
                    {
                        "id": "ce-2",
                        "path": str(root / "ce-2"),
                        "title": "Bouwproducten",
                        "members": ["bob"],
                    },
                ]
            }
        )
    )
    return index, root


@pytest.fixture
def served(tmp_path, case_index):
    index, root = case_index
    with ServedService(tmp_path / "state", index, root, dict(TOKENS)) as svc:
        yield svc


# A real hub for test_service_live.py: the hub tests' own fixtures (one `idsp hub up`, with a
# random account prefix and its own folders, everything removed afterwards).
from tests.hub.conftest import admin, hub, hub_env  # noqa: E402,F401
