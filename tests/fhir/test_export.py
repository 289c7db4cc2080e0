"""Bulk Data $export (https://hl7.org/fhir/uv/bulkdata/STU2/export.html): kick-off, status,
manifest and files; parameters; the snapshot as of transactionTime and `_since`."""

import httpx

from tests import factories as f
from tests.conftest import BASE
from tests.fhir.exports import by_type, export, status_url
from tests.http import create, reference


async def test_a_system_export_round_trip(client: httpx.AsyncClient) -> None:
    org = await create(client, f.organization())
    child = await create(client, f.patient(nhs=f.nhs_number(1)))
    flag = await create(client, f.flag(subject=reference(child)))
    url = await status_url(client, _type="Patient,Flag,Organization")
    assert url.startswith(f"{BASE}/$export-status/")
    manifest = await export(client, _type="Patient,Flag,Organization")
    assert manifest["requiresAccessToken"] is True
    assert manifest["request"] == f"{BASE}/$export?_type=Patient%2CFlag%2COrganization"
    assert manifest["error"] == [] and "deleted" not in manifest
    found = await by_type(client, manifest)
    assert found == {"Patient": [child], "Flag": [flag], "Organization": [org]}
    assert [item["type"] for item in manifest["output"]] == ["Patient", "Flag", "Organization"]
