"""The outbound endpoint allow-list (`app.access.endpoints`): each rule, both ways."""

from ipaddress import IPv4Network, IPv6Network, ip_address

import pytest

from app.access.endpoints import (
    AllowedEndpoint,
    address_issue,
    endpoint_issues,
    parse_allow_list,
    parse_networks,
    resolved_addresses,
    target_of,
)
from app.errors import Issue

WHERE = "Subscription.channel.endpoint"
ALLOWED = parse_allow_list(
    [
        "https://hooks.example.gov.uk/fhir",
        "https://*.la.example.gov.uk",
        "https://api.example.org:*/hooks/",
        "https://ports.example.org:8443/",
        "http://localhost:*/callback",
        "http://127.0.0.1:8080/",
        "https://xn--bcher-kva.example/",
    ]
)
LOOPBACK = parse_networks(["127.0.0.0/8"])


def issues(url: object, networks: str | None = None) -> list[Issue]:
    """The issues of `url` against ALLOWED, with `networks` (one CIDR) allowed, if given."""
    listed = parse_networks([networks]) if networks else ()
    return endpoint_issues(url, ALLOWED, listed, WHERE)


def refusal(url: object, networks: str | None = None) -> Issue:
    """The one issue refusing `url`."""
    found = issues(url, networks)
    assert len(found) == 1, found
    assert found[0].expression == (WHERE,)
    return found[0]


def not_listed(url: str) -> bool:
    """Whether `url` is refused only for not being on the allow-list."""
    issue = refusal(url)
    return issue.code == "business-rule" and "list of allowed endpoints" in issue.diagnostics


# parse_allow_list


def test_allow_list_entries_are_read_with_default_ports_and_paths() -> None:
    assert ALLOWED[:5] == (
        AllowedEndpoint("https", "hooks.example.gov.uk", 443, "/fhir"),
        AllowedEndpoint("https", "*.la.example.gov.uk", 443, "/"),
        AllowedEndpoint("https", "api.example.org", None, "/hooks/"),
        AllowedEndpoint("https", "ports.example.org", 8443, "/"),
        AllowedEndpoint("http", "localhost", None, "/callback"),
    )
    assert parse_allow_list(["http://LOCALHOST./"])[0] == AllowedEndpoint(
        "http", "localhost", 80, "/"
    )


def test_http_entries_for_loopback_hosts_are_accepted() -> None:
    entries = parse_allow_list(["http://127.0.0.2:9000", "http://[::1]/", "http://localhost"])
    assert [entry.host for entry in entries] == ["127.0.0.2", "::1", "localhost"]


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("hooks.example.gov.uk/fhir", "not an absolute URL"),
        ("/fhir", "not an absolute URL"),
        ("ftp://hooks.example.gov.uk/", "scheme"),
        ("http://hooks.example.gov.uk/", "http with a host that is not loopback"),
        ("http://10.0.0.1/", "http with a host that is not loopback"),
        ("http://*.localhost/", "http with a host that is not loopback"),
        ("https://user:secret@hooks.example.gov.uk/", "user name or password"),
        ("https://hooks.example.gov.uk/?a=1", "query or a fragment"),
        ("https://hooks.example.gov.uk/?", "query or a fragment"),
        ("https://hooks.example.gov.uk/#top", "query or a fragment"),
        ("https://hooks*.example.gov.uk/", "wildcard"),
        ("https://hooks.*.gov.uk/", "wildcard"),
        ("https://*.*.example.gov.uk/", "wildcard"),
        ("https://*/", "wildcard"),
        ("https://hooks.example.gov.uk/*", "wildcard"),
        ("https://*.10.0.0.1/", "wildcard in front of an IP address"),
        ("https:///fhir", "empty host"),
        ("https://:8443/", "empty host"),
        ("https://hooks.example.gov.uk:99999/", "port"),
        ("https://0x7f.1/", "number but not a plain dotted IPv4 address"),
    ],
)
def test_bad_allow_list_entries_are_named_with_the_reason(entry: str, why: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_allow_list(["https://fine.example.gov.uk/", entry])
    assert repr(entry) in str(raised.value)
    assert why in str(raised.value)


# parse_networks


def test_networks_are_read_and_a_bare_address_is_one_host() -> None:
    assert parse_networks(["10.0.0.0/8", "192.0.2.7", "fd00::/8", "2001:db8::1"]) == (
        IPv4Network("10.0.0.0/8"),
        IPv4Network("192.0.2.7/32"),
        IPv6Network("fd00::/8"),
        IPv6Network("2001:db8::1/128"),
    )


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "10.0.0.1/8", "intranet", "0x7f.1", ""])
def test_a_bad_network_is_named(entry: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_networks(["10.0.0.0/8", entry])
    assert f"network {entry!r}" in str(raised.value)


# Matching the allow-list: hosts, wildcards, ports, paths


def test_hosts_compare_case_insensitively_and_without_a_trailing_dot() -> None:
    assert issues("https://HOOKS.Example.GOV.uk./fhir/notify") == []
    assert refusal("https://hooks.example.gov.uk../fhir").code == "value"  # one dot only


@pytest.mark.parametrize(
    "url", ["https://hooks.la.example.gov.uk/", "https://a.b.la.example.gov.uk/x"]
)
def test_a_wildcard_covers_one_or_more_labels_in_front(url: str) -> None:
    assert issues(url) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://la.example.gov.uk/",  # the domain itself
        "https://evil-la.example.gov.uk/",  # not on a label boundary
        "https://hooks.la.example.gov.uk.evil.example/",
        "https://hooks.example.gov.uk.evil.example/fhir",  # and exact hosts are exact
        "https://evilhooks.example.gov.uk/fhir",
    ],
)
def test_a_wildcard_covers_nothing_else(url: str) -> None:
    assert not_listed(url)


def test_an_entry_without_a_port_means_the_schemes_default() -> None:
    assert issues("https://hooks.example.gov.uk:443/fhir") == []
    assert not_listed("https://hooks.example.gov.uk:8443/fhir")
    http = parse_allow_list(["http://localhost/callback"])
    assert endpoint_issues("http://localhost:80/callback", http, LOOPBACK, WHERE) == []
    refused = endpoint_issues("http://localhost:8080/callback", http, LOOPBACK, WHERE)
    assert "list of allowed endpoints" in refused[0].diagnostics


def test_an_entry_with_a_port_means_that_port_only() -> None:
    assert issues("https://ports.example.org:8443/x") == []
    assert not_listed("https://ports.example.org/x")
    assert not_listed("https://ports.example.org:443/x")


def test_an_entry_with_any_port_covers_every_port() -> None:
    assert issues("https://api.example.org/hooks/a") == []
    assert issues("https://api.example.org:1/hooks/a") == []
    assert issues("https://api.example.org:65535/hooks/a") == []


@pytest.mark.parametrize("path", ["/fhir", "/fhir/", "/fhir/Subscription/1?x=1"])
def test_a_path_prefix_covers_itself_and_paths_under_it(path: str) -> None:
    assert issues(f"https://hooks.example.gov.uk{path}") == []


@pytest.mark.parametrize("path", ["/fhirx", "/fhir.json", "/", "", "/FHIR", "/x/fhir"])
def test_a_path_prefix_matches_only_on_a_segment_boundary(path: str) -> None:
    assert not_listed(f"https://hooks.example.gov.uk{path}")


def test_a_path_prefix_ending_in_a_slash_needs_the_slash() -> None:
    assert issues("https://api.example.org/hooks/") == []
    assert not_listed("https://api.example.org/hooks")


@pytest.mark.parametrize(
    "path", ["/fhir/../admin", "/fhir/./x", "/fhir/%2e%2E/a", "/fhir/x%2f..%2fa"]
)
def test_dot_segments_are_refused(path: str) -> None:
    assert refusal(f"https://hooks.example.gov.uk{path}").code == "value"


def test_internationalised_hosts_compare_as_given() -> None:
    assert issues("https://XN--BCHER-KVA.example/") == []
    assert not_listed("https://bücher.example/")


def test_hosts_that_change_when_normalised_are_refused() -> None:
    issue = refusal("https://hooks.example.gov.u\uff4b/fhir")  # fullwidth k
    assert issue.code == "value"
    assert "normalised" in issue.diagnostics
    assert refusal("https://hooks.example.gov.uk\uff0eevil.example/").code == "value"
    assert refusal("https://\uff11\uff12\uff17.0.0.1/").code == "value"  # fullwidth 127


# Schemes


@pytest.mark.parametrize(
    "url", ["http://hooks.example.gov.uk/fhir", "ftp://hooks.example.gov.uk/fhir", "file://x/"]
)
def test_schemes_other_than_https_are_refused_for_hosts_that_are_not_loopback(url: str) -> None:
    issue = refusal(url)
    assert issue.code == "business-rule"
    assert "https" in issue.diagnostics


def test_http_to_loopback_is_accepted_when_loopback_is_listed() -> None:
    assert issues("http://localhost:8000/callback", "127.0.0.0/8") == []
    assert issues("http://localhost/callback/1", "127.0.0.1") == []
    assert issues("http://127.0.0.1:8080/x", "127.0.0.0/8") == []


def test_localhost_counts_as_a_loopback_address() -> None:
    issue = refusal("http://localhost:8000/callback")
    assert issue.code == "business-rule"
    assert "private, loopback or reserved" in issue.diagnostics


# IP literals: public, private, listed


PRIVATE = [
    ("10.0.0.1", "10.0.0.0/8"),
    ("172.16.0.1", "172.16.0.0/12"),
    ("172.31.255.254", "172.16.0.0/12"),
    ("192.168.1.1", "192.168.0.0/16"),
    ("169.254.169.254", "169.254.0.0/16"),
    ("100.64.0.1", "100.64.0.0/10"),
    ("127.0.0.1", "127.0.0.0/8"),
    ("0.0.0.0", "0.0.0.0/32"),
    ("224.0.0.1", "224.0.0.0/4"),
    ("[fc00::1]", "fc00::/7"),
    ("[fd12:3456::1]", "fc00::/7"),
    ("[fe80::1]", "fe80::/10"),
    ("[::1]", "::1"),
    ("[::]", "::/128"),
    ("[::ffff:10.0.0.1]", "10.0.0.0/8"),
    ("[::ffff:127.0.0.1]", "127.0.0.0/8"),
    ("[::127.0.0.1]", "127.0.0.0/8"),
    ("[64:ff9b::10.0.0.1]", "10.0.0.0/8"),
    ("[2002:a00:1::1]", "10.0.0.0/8"),
    ("[64:ff9b:1::a00:1]", "64:ff9b:1::/48"),
]


def only_this_host(host: str) -> tuple[AllowedEndpoint, ...]:
    """An allow-list of `host` alone, any port and path."""
    return parse_allow_list([f"https://{host}:*/"])


@pytest.mark.parametrize(("host", "network"), PRIVATE)
def test_private_addresses_are_refused_unless_listed(host: str, network: str) -> None:
    url = f"https://{host}/hook"
    refused = endpoint_issues(url, only_this_host(host), (), WHERE)
    assert [issue.code for issue in refused] == ["business-rule"]
    assert "private, loopback or reserved" in refused[0].diagnostics
    assert endpoint_issues(url, only_this_host(host), parse_networks([network]), WHERE) == []


def test_a_private_address_outside_the_listed_networks_is_refused() -> None:
    url = "https://10.1.2.3/hook"
    listed = parse_networks(["10.9.0.0/16", "fd00::/8"])
    assert len(endpoint_issues(url, only_this_host("10.1.2.3"), listed, WHERE)) == 1


@pytest.mark.parametrize("host", ["172.32.0.1", "93.184.215.14", "[2a00:1450:4009::1]"])
def test_public_addresses_are_accepted(host: str) -> None:
    assert endpoint_issues(f"https://{host}/hook", only_this_host(host), (), WHERE) == []


def test_ipv6_literals_compare_as_addresses() -> None:
    allowed = only_this_host("[2a00:1450:4009:0:0:0:0:1]")
    assert endpoint_issues("https://[2A00:1450:4009::1]/", allowed, (), WHERE) == []


ODD_IPV4 = "0x7f.1 0x7f000001 2130706433 0177.0.0.1 127.1 127.0.1 010.0.0.1 1.2.3.4.5 0x"


@pytest.mark.parametrize("host", [*ODD_IPV4.split(), "hooks.example.0x10", "hooks.example.123"])
def test_odd_ipv4_forms_are_refused_rather_than_misread(host: str) -> None:
    issue = refusal(f"https://{host}/fhir", "0.0.0.0/0")
    assert issue.code == "value"
    assert "plain dotted IPv4 address" in issue.diagnostics


def test_hex_labels_before_the_last_are_host_names() -> None:
    assert issues("https://0x7f.la.example.gov.uk/") == []


@pytest.mark.parametrize(
    "url",
    ["https://[fe80::1%25eth0]/", "https://[v1.fe]/", "https://[::1]x/", "https://::1/"],
)
def test_bad_ipv6_literals_are_refused(url: str) -> None:
    assert refusal(url, "::/0").code == "value"


# Malformed URLs, userinfo, fragments


@pytest.mark.parametrize(
    "url",
    [
        None,
        42,
        ["https://hooks.example.gov.uk/fhir"],
        "",
        "hooks.example.gov.uk/fhir",
        "//hooks.example.gov.uk/fhir",
        "https:hooks.example.gov.uk/fhir",
        "https:///fhir",
        "https://:443/fhir",
        "https://hooks.example.gov.uk:/fhir",
        "https://hooks.example.gov.uk:0/fhir",
        "https://hooks.example.gov.uk:65536/fhir",
        "https://hooks.example.gov.uk:+443/fhir",
        "https://hooks.example.gov.uk:443:443/fhir",
        "https://hooks..example.gov.uk/fhir",
        "https://-hooks.example.gov.uk/fhir",
        "https://hooks%2eexample.gov.uk/fhir",
        "https://hooks.example.gov.uk\\@evil.example/fhir",
        "https://hooks.example.gov.uk/fhir\n",
        " https://hooks.example.gov.uk/fhir",
        "https://hooks.exa\tmple.gov.uk/fhir",
        "https://hooks.example.gov.uk/f\u200bhir",
        "https://[::1/fhir",
    ],
)
def test_malformed_endpoints_are_refused_as_values(url: object) -> None:
    assert refusal(url, "0.0.0.0/0").code == "value"


def test_an_endpoint_of_2048_characters_is_read_and_a_longer_one_refused() -> None:
    base = "https://hooks.example.gov.uk/fhir/"
    assert issues(base + "a" * (2048 - len(base))) == []
    issue = refusal(base + "a" * (2049 - len(base)))
    assert issue.code == "value"
    assert "2048" in issue.diagnostics


@pytest.mark.parametrize("userinfo", ["alice:s3cret@", "alice@", ":s3cret@", "@"])
def test_userinfo_is_refused_without_echoing_it(userinfo: str) -> None:
    url = f"https://{userinfo}hooks.example.gov.uk/fhir"
    issue = refusal(url)
    assert issue.code == "business-rule"
    assert "user name or password" in issue.diagnostics
    assert "s3cret" not in issue.diagnostics
    assert "alice" not in issue.diagnostics


@pytest.mark.parametrize(
    "url", ["https://hooks.example.gov.uk/fhir#x", "https://hooks.example.gov.uk/fhir#"]
)
def test_fragments_are_refused(url: str) -> None:
    issue = refusal(url)
    assert issue.code == "business-rule"
    assert "fragment" in issue.diagnostics


def test_refusals_do_not_reveal_the_allow_list() -> None:
    issue = refusal("https://elsewhere.example/fhir")
    assert "hooks.example.gov.uk" not in issue.diagnostics
    assert "la.example.gov.uk" not in issue.diagnostics


# address_issue, resolved_addresses, target_of


def test_addresses_that_are_all_public_pass() -> None:
    assert address_issue(["93.184.215.14", "2a00:1450:4009::1"], ()) is None


@pytest.mark.parametrize(
    "private",
    ["10.0.0.1", "169.254.169.254", "127.0.0.1", "::1", "fe80::1%eth0", "::ffff:10.0.0.1"],
)
def test_any_private_address_among_them_is_refused(private: str) -> None:
    reason = address_issue(["93.184.215.14", private], ())
    assert reason is not None
    assert "private, loopback or reserved" in reason


def test_private_addresses_in_the_listed_networks_pass() -> None:
    listed = parse_networks(["10.0.0.0/8", "fe80::/10"])
    assert address_issue(["10.2.3.4", "::ffff:10.0.0.1", "fe80::1%eth0"], listed) is None
    assert address_issue(["10.2.3.4", "192.168.0.1"], listed) is not None


def test_no_address_or_a_non_address_is_refused() -> None:
    assert address_issue([], ()) is not None
    assert address_issue(["hooks.example.gov.uk"], ()) is not None


async def test_localhost_resolves_to_loopback_addresses() -> None:
    found = await resolved_addresses("localhost", 8080)
    assert found
    assert len(set(found)) == len(found)
    assert all(ip_address(address).is_loopback for address in found)
    assert address_issue(found, LOOPBACK + parse_networks(["::1"])) is None
    assert address_issue(found, ()) is not None


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("https://hooks.example.gov.uk/fhir", ("hooks.example.gov.uk", 443)),
        ("http://localhost/callback", ("localhost", 80)),
        ("https://API.example.org.:8443/hooks/", ("api.example.org", 8443)),
        ("https://[2A00:1450:4009::1]:444/x", ("2a00:1450:4009::1", 444)),
    ],
)
def test_target_of_gives_the_host_and_port(url: str, target: tuple[str, int]) -> None:
    assert target_of(url) == target
