"""Creating project spaces: apiSpaces/createSpace.feature and listSpaces.feature, Graph's ``CreateDrive``.

Sources: tests/acceptance/features/apiSpaces/createSpace.feature; services/graph/pkg/service/v0/drives.go
(``CreateDrive``, ``validateSpaceName``, ``getQuota``); libre-graph-api-go ``Drive.UnmarshalJSON`` (the key
``name`` is required as written); decomposedfs ``CreateStorageSpace`` (the alias template
``{{.SpaceType}}/{{.SpaceName | replace " " "-" | lower}}`` and the creator's Manager grant).
"""

from __future__ import annotations

import pytest

from tests.conformance.ocis.conftest import Ocis
from tests.conformance.ocis.support import drive_path, error, ids


async def test_a_space_admin_creates_a_project_space_with_the_default_quota(ocis: Ocis) -> None:
    drive = await ocis.create("Project Mars")

    assert drive["name"] == ocis.name("Project Mars")
    assert drive["driveType"] == "project"
    assert drive["quota"]["total"] == ocis.default_quota
    assert drive["root"]["webDavUrl"].endswith(f"/dav/spaces/{drive['id']}")
    assert drive["webUrl"].endswith(f"/f/{drive['id']}")
    storage, dollar, space = drive["id"].partition("$")
    assert storage
    assert dollar
    assert space


async def test_a_space_admin_creates_a_project_space_with_a_given_quota(ocis: Ocis) -> None:
    drive = await ocis.create("Project Venus", quota={"total": 2000})
    assert drive["quota"]["total"] == 2000


async def test_the_creator_is_the_spaces_manager(ocis: Ocis) -> None:
    drive = await ocis.create()
    [permission] = drive["root"]["permissions"]
    assert permission["roles"] == ["manager"]
    assert permission["grantedToIdentities"][0]["user"]["id"] == ocis.admin_id


async def test_the_alias_is_the_trimmed_lower_cased_name_with_each_space_a_dash(ocis: Ocis) -> None:
    response = await ocis.admin.post("/graph/v1.0/drives", json={"name": f"  {ocis.prefix}  Two  Spaces  "})
    ocis.remember(response)
    drive = response.json()
    assert drive["name"] == f"{ocis.prefix}  Two  Spaces"
    assert drive["driveAlias"] == "project/" + f"{ocis.prefix}  Two  Spaces".replace(" ", "-").lower()


async def test_a_given_alias_and_description_are_kept(ocis: Ocis) -> None:
    alias = f"project/{ocis.prefix.replace(' ', '-').lower()}-tagged"
    drive = await ocis.create(description="tenant:42", driveAlias=alias)
    assert (drive["driveAlias"], drive["description"]) == (alias, "tenant:42")


async def test_a_negative_quota_means_the_default_quota(ocis: Ocis) -> None:
    drive = await ocis.create(quota={"total": -1})
    assert drive["quota"]["total"] == ocis.default_quota


async def test_names_are_not_unique_two_creates_make_two_spaces(ocis: Ocis) -> None:
    first = await ocis.create("Same")
    second = await ocis.create("Same")
    assert first["id"] != second["id"]
    listed = await ocis.admin.get("/graph/v1.0/me/drives", params={"$filter": "driveType eq 'project'"})
    assert {first["id"], second["id"]} <= set(ids(listed))


async def test_keys_other_than_name_match_case_insensitively(ocis: Ocis) -> None:
    drive = await ocis.create(Description="tenant:7", QUOTA={"Total": 3000})
    assert (drive["description"], drive["quota"]["total"]) == ("tenant:7", 3000)


@pytest.mark.parametrize(
    "body",
    [
        {"Name": "Capitalised key"},
        {"description": "no name at all"},
        {"name": "Space", "colour": "blue"},
        {"name": "Space", "quota": {"total": 1.5}},
        {"name": "Space", "quota": {"total": "2000"}},
    ],
)
async def test_a_body_that_is_not_a_drive_is_refused(ocis: Ocis, body: dict[str, object]) -> None:
    response = await ocis.admin.post("/graph/v1.0/drives", json=body)
    ocis.remember(response)
    assert error(response) == (400, "invalidRequest", "Invalid body schema definition")


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("   ", "spacename must not be empty"),
        ("x" * 256, "spacename must be smaller than 255"),
        ("acme.com", 'spacenames must not contain [/ \\ . : ? * " > < |]'),
        ("a/b", 'spacenames must not contain [/ \\ . : ? * " > < |]'),
        ("a:b", 'spacenames must not contain [/ \\ . : ? * " > < |]'),
    ],
)
async def test_an_invalid_name_is_an_invalid_request(ocis: Ocis, name: str, rule: str) -> None:
    response = await ocis.admin.post("/graph/v1.0/drives", json={"name": name})
    ocis.remember(response)
    assert error(response) == (400, "invalidRequest", f"Invalid spacename: {rule}")


async def test_only_project_spaces_can_be_created(ocis: Ocis) -> None:
    response = await ocis.admin.post("/graph/v1.0/drives", json={"name": ocis.name(), "driveType": "personal"})
    ocis.remember(response)
    assert error(response) == (400, "invalidRequest", "Drives of this type cannot be created via this api")


async def test_an_ordinary_user_cannot_create_a_project_space(ocis: Ocis) -> None:
    member, _ = ocis.as_member()
    response = await member.post("/graph/v1.0/drives", json={"name": ocis.name("Project Mars")})
    ocis.remember(response)
    assert error(response) == (403, "notAllowed", "Insufficient permissions to create a space.")


async def test_a_created_space_can_be_read_back_by_id(ocis: Ocis) -> None:
    drive = await ocis.create()
    response = await ocis.admin.get(drive_path(drive["id"]))
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["name"]) == (drive["id"], drive["name"])
