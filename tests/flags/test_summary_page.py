"""The summary a person reads (`app.flags.summary_page`, `family_diagram`, `family_view`):
the OperationOutcome's XHTML narrative, and the HTML page with its family diagram, through
HTTP; every value escaped, nothing loaded, the same access as the Bundle."""

import asyncio
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from app.flags import codes
from app.flags.family_diagram import FLAGGED, SUBJECT_FILL
from app.settings import Settings
from tests import factories as f
from tests.callers import app_client_for, scoped
from tests.conftest import app_context
from tests.http import create, reference

XHTML = "{http://www.w3.org/1999/xhtml}"
HOSTILE = '<script>alert("x")</script>&'


async def family(client: httpx.AsyncClient, app: FastAPI) -> dict[str, Any]:
    """A child on a plan with a father who carries no identifier, a half-brother in another
    authority with a flag of his own, and a council."""
    vocabulary = app_context(app).vocabulary
    leeds = await create(client, f.organization(ods="9LE", name="Leeds City Council"))
    bradford = await create(client, f.organization(ods="9BD", name="Bradford Council"))

    def responsible(council: dict[str, Any]) -> dict[str, Any]:
        url = vocabulary.responsible_local_authority_extension
        return {"extension": [{"url": url, "valueReference": {"reference": reference(council)}}]}

    child = await create(
        client, f.patient(nhs=f.nhs_number(810), given="Amy", family=HOSTILE) | responsible(leeds)
    )
    brother_nhs = f.nhs_number(820)
    brother = await create(
        client,
        f.patient(nhs=brother_nhs, given="Ben", gender="male") | responsible(bradford),
    )
    await create(client, f.related_person(patient=reference(child), relationship="FTH"))
    await create(
        client, f.related_person(patient=reference(child), relationship="HBRO", nhs=brother_nhs)
    )
    for subject, author, kind in (
        (child, leeds, codes.CHILD_PROTECTION_PLAN),
        (brother, bradford, codes.LOOKED_AFTER_CHILD),
    ):
        flag = f.project_flag(
            vocabulary=vocabulary,
            subject=reference(subject),
            author=reference(author),
            flag_type=kind,
        )
        await create(client, flag)
    return child


async def test_the_outcome_carries_a_generated_xhtml_narrative_of_warnings_and_family(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    child = await family(client, app)

    bundle = (await client.get(f"/Patient/{child['id']}/$safeguarding-summary")).json()

    text = bundle.get("entry", [])[-1]["resource"]["text"]
    assert text["status"] == "generated"
    div = ET.fromstring(text["div"])  # well-formed XHTML
    assert div.tag == f"{XHTML}div"
    assert not any(e.tag.endswith(("script", "img", "a")) for e in div.iter())
    words = "".join(div.itertext())
    assert "Father not identified" in words
    assert "Ben Smith" in words and "half-brother" in words and "Looked after child" in words
    assert "Bradford Council" in words  # his authority differs from Amy's
    assert HOSTILE in words  # shown as text, never markup
    assert "<script>" not in text["div"]


@pytest.mark.parametrize(
    ("accept", "query"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", ""),
        ("application/fhir+json", "?_format=html"),
        ("*/*", "?_format=text/html"),
    ],
)
async def test_a_browser_or_format_html_gets_a_self_contained_page(
    client: httpx.AsyncClient, app: FastAPI, accept: str, query: str
) -> None:
    child = await family(client, app)

    response = await client.get(
        f"/Patient/{child['id']}/$safeguarding-summary{query}", headers={"Accept": accept}
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["vary"] == "Accept"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert page.startswith("<!DOCTYPE html>")
    assert page.index("<h2>Warnings</h2>") < page.index("<svg")  # the warnings first
    assert "<script" not in page and "src=" not in page and "href=" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    svg = ET.fromstring(page[page.index("<svg") : page.index("</svg>") + 6])
    groups = sorted(str(g.get("class")) for g in svg.iter("{http://www.w3.org/2000/svg}g"))
    assert groups == ["member half-sibling", "member parent", "member subject"]
    assert 'stroke-dasharray="6 4"' in page  # the father, not identified, drawn dashed


async def test_fhir_json_first_in_accept_still_gets_the_bundle(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    child = await family(client, app)
    response = await client.get(
        f"/Patient/{child['id']}/$safeguarding-summary",
        headers={"Accept": "application/fhir+json, text/html"},
    )
    assert response.headers["content-type"].startswith("application/fhir+json")
    xml = await client.get(
        f"/Patient/{child['id']}/$safeguarding-summary", headers={"Accept": "application/xml"}
    )
    assert xml.status_code == 406


async def test_the_page_by_nhs_number_needs_the_same_token_and_access_as_the_bundle(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    await family(client, app)
    council = await create(client, f.organization(ods="9YK", name="York Council"))
    number = f"https://fhir.nhs.uk/Id/nhs-number|{f.nhs_number(810)}"
    url = f"/Patient/$safeguarding-summary?identifier={number}&_format=html"

    mine = await client.get(url)
    anonymous = await httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=str(client.base_url)
    ).get(url)
    async with app_client_for(
        settings, scoped("system/*.rs", "local-authority", council["id"])
    ) as york:
        hidden = await york.get(url)

    assert mine.status_code == 200 and "<svg" in mine.text
    assert anonymous.status_code == 401
    assert hidden.status_code == 404  # York is not responsible for Amy: as if she did not exist
    assert "Amy" not in hidden.text
    assert "Amy" in mine.text


def _chromium() -> str:
    """Debian's Chromium, installed here when missing; the test is skipped, saying why, only
    where it cannot be installed."""
    found = shutil.which("chromium")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        for step in (install, ["apt-get", "update"], install):  # the lists may be stale
            try:
                subprocess.run(step, capture_output=True, timeout=900, check=False)
            except subprocess.TimeoutExpired:
                break
            found = shutil.which("chromium")
            if found is not None:
                break
    if found is None:
        pytest.skip(
            "Chromium is not installed and could not be installed here (apt-get install "
            "chromium needs root and Debian's package lists): the page was not rendered"
        )
    return found


def _screenshot(chromium: str, page: bytes, folder: Path) -> Image.Image:
    html, png = folder / "summary.html", folder / "summary.png"
    html.write_bytes(page)
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,1400",
            f"--screenshot={png}",
            html.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return Image.open(png).convert("RGB")


def _share(image: Image.Image, colour: str) -> float:
    """The share of the image's pixels within a small distance of `colour` (#rrggbb)."""
    target = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    near = sum(
        count
        for count, pixel in image.getcolors(maxcolors=image.width * image.height) or []
        if sum(abs(a - b) for a, b in zip(pixel, target, strict=True)) <= 24
    )
    return near / (image.width * image.height)


async def test_the_page_renders_its_family_diagram_in_a_browser(
    client: httpx.AsyncClient, app: FastAPI, tmp_path: Path
) -> None:
    chromium = _chromium()
    child = await family(client, app)
    page = await client.get(f"/Patient/{child['id']}/$safeguarding-summary?_format=html")

    image = await asyncio.to_thread(_screenshot, chromium, page.content, tmp_path)

    # The subject's box, filled with the diagram's blue, and red flag lines: drawn, not blank.
    assert _share(image, SUBJECT_FILL) > 0.005, "no subject box in the screenshot"
    assert _share(image, FLAGGED) > 0.0005, "no flags in the screenshot"
    assert _share(image, "#ffffff") < 0.98


async def test_characters_xml_forbids_in_a_name_leave_the_narrative_well_formed(
    client: httpx.AsyncClient,
) -> None:
    child = await create(client, f.patient(nhs=f.nhs_number(830), family="Smith\x01\x08"))
    bundle = (await client.get(f"/Patient/{child['id']}/$safeguarding-summary")).json()
    div = bundle.get("entry", [])[-1]["resource"]["text"]["div"]
    assert "Smith\ufffd\ufffd" in "".join(ET.fromstring(div).itertext())
