"""The family as an inline SVG diagram: the subject in the centre, parents and step-parents
above, siblings and half-siblings beside, children below, each a box naming the person and
how they are related, with their active safeguarding flags in red, a local authority other
than the subject's, and a father not recorded or not identified drawn dashed. Every value is
escaped; no script, no external reference.
Spec: https://www.w3.org/TR/SVG11/
"""

from collections.abc import Sequence

from app.flags.family_view import Member, escaped

WIDTH, BOX_WIDTH, BOX_HEIGHT, LINE = 960, 210, 96, 15
ROWS = {"parent": 0, "step-parent": 0, "subject": 1, "sibling": 1, "half-sibling": 1, "child": 2}
SUBJECT_FILL = "#1d70b8"  # the subject's box: a strong blue, the one thing drawn in it
FLAGGED, CALM, MISSING = "#d4351c", "#505a5f", "#b1b4b6"
FLAGS_SHOWN = 3  # flag lines in a box; more are counted


def _rows(shown: Sequence[Member]) -> list[list[Member]]:
    """Three rows: parents, then siblings around the subject, then children."""
    rows: list[list[Member]] = [[], [], []]
    beside = [m for m in shown if ROWS[m.group] == 1 and m.group != "subject"]
    half = len(beside) // 2
    rows[1] = [*beside[:half], *(m for m in shown if m.group == "subject"), *beside[half:]]
    for member in shown:
        if ROWS[member.group] != 1:
            rows[ROWS[member.group]].append(member)
    return rows


def _lines(member: Member) -> list[tuple[str, str]]:
    """(text, colour) of each line in a member's box, after the name."""
    lines = [(member.relation, "#ffffff" if member.group == "subject" else CALM)]
    if member.missing:
        lines.append((member.missing, CALM))
    flags = [flag.split(" since ")[0] for flag in member.flags]  # the table has the rest
    lines += [(f"\u2691 {flag}", FLAGGED) for flag in flags[:FLAGS_SHOWN]]
    if len(flags) > FLAGS_SHOWN:
        lines.append((f"and {len(flags) - FLAGS_SHOWN} more flags", FLAGGED))
    if member.authority:
        lines.append((f"Local authority: {member.authority}", CALM))
    return lines


def _box(member: Member, x: float, y: float) -> str:
    subject = member.group == "subject"
    fill = SUBJECT_FILL if subject else "#ffffff"
    stroke = FLAGGED if member.flags and not subject else (MISSING if member.missing else CALM)
    dash = ' stroke-dasharray="6 4"' if member.missing else ""
    text_colour = "#ffffff" if subject else "#0b0c0c"
    parts = [
        f'<g class="member {escaped(member.group)}">',
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_WIDTH}" height="{_height(member)}" rx="8" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="2"{dash}/>',
        f'<text x="{x + 10:.0f}" y="{y + 20:.0f}" font-weight="bold" fill="{text_colour}">'
        f"{escaped(_clip(member.name))}</text>",
    ]
    for index, (line, colour) in enumerate(_lines(member)):
        colour = "#ffffff" if subject else colour
        parts.append(
            f'<text x="{x + 10:.0f}" y="{y + 38 + index * LINE:.0f}" fill="{colour}" '
            f'font-size="12">{escaped(_clip(line, 34))}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def _height(member: Member) -> int:
    return max(BOX_HEIGHT, 34 + LINE * len(_lines(member)))


def _clip(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def diagram(shown: Sequence[Member]) -> str:
    """The SVG element of the family."""
    rows = _rows(shown)
    heights = [max((_height(m) for m in row), default=0) for row in rows]
    tops, y = [], 20
    for height in heights:
        tops.append(y)
        y += height + 50 if height else 0
    columns = max(len(row) for row in rows)
    width = max(WIDTH, columns * (BOX_WIDTH + 20) + 20)
    centre = _centre(rows[1], width)
    boxes, links = [], []
    for row, top in zip(rows, tops, strict=True):
        start = (width - len(row) * (BOX_WIDTH + 20) + 20) / 2
        for index, member in enumerate(row):
            x = start + index * (BOX_WIDTH + 20)
            boxes.append(_box(member, x, top))
            if member.group != "subject":
                links.append(_link(x + BOX_WIDTH / 2, top, centre, tops[1], member))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{y}" '
        f'viewBox="0 0 {width} {y}" font-family="Arial, sans-serif" font-size="14">'
        f"<title>Family diagram</title>{''.join(links)}{''.join(boxes)}</svg>"
    )


def _centre(row: Sequence[Member], width: float) -> float:
    """The x of the middle of the subject's box."""
    start = (width - len(row) * (BOX_WIDTH + 20) + 20) / 2
    index = next((i for i, m in enumerate(row) if m.group == "subject"), 0)
    return start + index * (BOX_WIDTH + 20) + BOX_WIDTH / 2


def _link(x: float, top: float, centre: float, middle: float, member: Member) -> str:
    """A line from the subject's box to a member's."""
    dash = ' stroke-dasharray="6 4"' if member.missing else ""
    y = top + BOX_HEIGHT / 2
    return (
        f'<line x1="{centre:.0f}" y1="{middle + BOX_HEIGHT / 2:.0f}" x2="{x:.0f}" y2="{y:.0f}" '
        f'stroke="{MISSING}" stroke-width="2"{dash}/>'
    )
