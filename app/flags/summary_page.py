"""The summary for a person to read: the OperationOutcome's narrative (XHTML: the warnings,
then the family and the lead professional) and a self-contained HTML page (the warnings first,
then the family diagram as inline SVG, then the same table). Every value is escaped; the page
has no script and loads nothing.
Spec: http://hl7.org/fhir/R4/narrative.html
"""

from collections.abc import Sequence

from app.flags.care_teams import leads
from app.flags.codes import Vocabulary
from app.flags.family_diagram import diagram
from app.flags.family_view import Member, escaped, members, name_of
from app.flags.summary_warnings import DISPLAYS, Family, Finding, start_of
from app.normalise import target_id

XHTML = "http://www.w3.org/1999/xhtml"
STYLE = (
    "body{font-family:Arial,sans-serif;margin:24px;color:#0b0c0c;max-width:1100px}"
    "h1{font-size:26px}h2{font-size:20px;margin-top:28px}"
    ".warnings li{border-left:6px solid #942514;padding:6px 10px;margin:8px 0;"
    "background:#fdf3f1;list-style:none}.calm{border-left:6px solid #00703c;padding:6px 10px}"
    "table{border-collapse:collapse}td,th{border:1px solid #b1b4b6;padding:4px 8px;"
    "text-align:left;vertical-align:top}"
)


def _warnings(found: Sequence[Finding]) -> str:
    if not found:
        return '<p class="calm">No safeguarding warnings.</p>'
    items = "".join(
        f"<li><b>{escaped(DISPLAYS[finding.code])}</b>: {escaped(finding.text)}</li>"
        for finding in found
    )
    return f'<ul class="warnings">{items}</ul>'


def _table(shown: Sequence[Member]) -> str:
    rows = "".join(
        "<tr>"
        f"<td>{escaped(member.name)}</td>"
        f"<td>{escaped(member.relation)}{_missing(member)}</td>"
        f"<td>{escaped('; '.join(member.flags)) or 'none'}</td>"
        f"<td>{escaped(member.authority or '')}</td>"
        "</tr>"
        for member in shown
    )
    head = "<tr><th>Person</th><th>Relationship</th><th>Active safeguarding flags</th>"
    return f"<table>{head}<th>Local authority, where it differs</th></tr>{rows}</table>"


def _missing(member: Member) -> str:
    return f" ({escaped(member.missing)})" if member.missing else ""


def lead_professional(family: Family, vocabulary: Vocabulary) -> str:
    """`Leeds City Council, since 2026-02-01 (CareTeam/x)`, or that none is recorded."""
    for team in family.care_teams:
        for _, lead in leads(team.resource, vocabulary):
            member = lead.get("member") or {}
            org = target_id(member, "Organization", family.base)
            who = family.organizations.get(f"Organization/{org}") if org else None
            named = who or member.get("display") or member.get("reference") or "unnamed"
            return f"{named}, since {start_of(team)} ({team.reference})"
    return (
        "none recorded" if family.teams_seen else "not shown (this client may not read CareTeams)"
    )


def _body(found: Sequence[Finding], shown: Sequence[Member], lead: str, picture: str = "") -> str:
    return (
        f"<h2>Warnings</h2>{_warnings(found)}"
        f"<h2>Family</h2>{picture}{_table(shown)}"
        f"<p><b>Lead professional</b>: {escaped(lead)}</p>"
    )


def narrative(
    family: Family, found: Sequence[Finding], vocabulary: Vocabulary, adult: bool
) -> dict[str, str]:
    """The OperationOutcome's `text`: status generated, the warnings and the family."""
    title = f"<h1>Safeguarding summary: {escaped(name_of(family.child.resource))}</h1>"
    shown = members(family, vocabulary, adult)
    body = _body(found, shown, lead_professional(family, vocabulary))
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{title}{body}</div>'}


def page(family: Family, found: Sequence[Finding], vocabulary: Vocabulary, adult: bool) -> bytes:
    """The summary as a self-contained HTML page: warnings, family diagram, table."""
    name = escaped(name_of(family.child.resource))
    shown = members(family, vocabulary, adult)
    body = _body(found, shown, lead_professional(family, vocabulary), diagram(shown))
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Safeguarding summary: {name}</title><style>{STYLE}</style></head>"
        f"<body><h1>Safeguarding summary: {name}</h1>{body}</body></html>"
    )
    return document.encode()
