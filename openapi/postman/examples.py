"""Stores each request's response from a newman run as the request's saved example.

Usage: python openapi/postman/examples.py REPORT.json COLLECTION.json SERVED_ORIGIN
(`openapi/postman/run.sh --examples` runs the collection with newman's JSON reporter against a
server at SERVED_ORIGIN, e.g. http://127.0.0.1:43121, and then this). Each request keeps one
example, the response of its last execution in the run, with SERVED_ORIGIN written as the
origin `make run` serves; ids, times and NHS numbers change from run to run. Everything else
in the collection is kept.
"""

import json
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

# Response headers worth showing in an example; the rest (date, lengths) are noise.
KEPT_HEADERS = {
    "content-type",
    "location",
    "content-location",
    "etag",
    "last-modified",
    "www-authenticate",
    "retry-after",
    "x-progress",
    "content-security-policy",
    "cache-control",
}
EXAMPLE_ORIGIN = "http://127.0.0.1:8000"  # what `make run` serves, as in the README
EXAMPLE_NAMESPACE = uuid.UUID("0f6c1d4e-7a0b-4f55-9c61-2d8e3b4a5f10")


def last_responses(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The response of each request's last execution, by the request's item id."""
    found: dict[str, dict[str, Any]] = {}
    for execution in report["run"]["executions"]:
        if "response" in execution:
            found[execution["item"]["id"]] = execution["response"]
    return found


def body_text(response: dict[str, Any]) -> tuple[str, str]:
    """The body as text, JSON pretty-printed, and Postman's preview language for it."""
    raw = bytes(response.get("stream", {}).get("data", [])).decode("utf-8", "replace")
    media = next(
        (h["value"] for h in response.get("header", []) if h["key"].lower() == "content-type"), ""
    )
    if "html" in media:
        return raw, "html"
    if "ndjson" in media or not raw:
        return raw, "text"
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False), "json"
    except ValueError:
        return raw, "text"


def moved(text: str, served_origin: str) -> str:
    """The text with the served origin (as is, and percent-encoded) written as EXAMPLE_ORIGIN."""
    text = text.replace(served_origin, EXAMPLE_ORIGIN)
    return text.replace(quote(served_origin, safe=""), quote(EXAMPLE_ORIGIN, safe=""))


def example(item: dict[str, Any], response: dict[str, Any], served_origin: str) -> dict[str, Any]:
    """A Postman example (collection v2.1 `response`) of an item's request and a response, the
    server's origin written as EXAMPLE_ORIGIN."""
    body, language = body_text(response)
    request = {
        key: item["request"][key]
        for key in ("method", "header", "url", "body")
        if key in item["request"]
    }
    return {
        "id": str(uuid.uuid5(EXAMPLE_NAMESPACE, item["id"])),
        "name": f"{response['code']} {response['status']}",
        "originalRequest": request,
        "status": response["status"],
        "code": response["code"],
        "_postman_previewlanguage": language,
        "header": [
            {"key": h["key"], "value": moved(h["value"], served_origin)}
            for h in response.get("header", [])
            if h["key"].lower() in KEPT_HEADERS
        ],
        "cookie": [],
        "body": moved(body, served_origin),
    }


def requests_of(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every request item under these items, folders opened."""
    found: list[dict[str, Any]] = []
    for item in items:
        found.extend(requests_of(item["item"]) if "item" in item else [item])
    return found


def main(report_path: Path, collection_path: Path, served_origin: str) -> int:
    """Write the examples into the collection; 1 when a request has no response in the run."""
    responses = last_responses(json.loads(report_path.read_text()))
    collection = json.loads(collection_path.read_text())
    missing = []
    for item in requests_of(collection["item"]):
        if item["id"] in responses:
            item["response"] = [example(item, responses[item["id"]], served_origin)]
        else:
            missing.append(item["name"])
    collection_path.write_text(json.dumps(collection, indent=2, ensure_ascii=False) + "\n")
    for name in missing:
        print(f"no response in the run for: {name}", file=sys.stderr)
    print(f"examples stored for {len(responses)} requests in {collection_path}")
    return 1 if missing else 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].rstrip("/")))
