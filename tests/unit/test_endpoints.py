"""Check templates parsed once into endpoints: what a probe connects to and sends, as fields."""

from __future__ import annotations

import pytest

from chalicelib.core.endpoints import BadUrl, CheckTemplate, Endpoint, parse_url


@pytest.mark.parametrize(
    ("template", "address", "port", "expected"),
    [
        (
            "http://{address}:80/health",
            "10.0.0.5",
            None,
            Endpoint("http", "10.0.0.5", 80, path="/health", host_header="10.0.0.5:80"),
        ),
        (
            "http://{address}/",
            "10.0.0.5",
            None,
            Endpoint("http", "10.0.0.5", 80, path="/", host_header="10.0.0.5"),
        ),
        (
            "http://{address}",
            "10.0.0.5",
            None,
            Endpoint("http", "10.0.0.5", 80, path="/", host_header="10.0.0.5"),
        ),
        (
            "https://{address}:{port}/ready?deep=1",
            "2001:db8::5",
            8443,
            Endpoint(
                "https", "2001:db8::5", 8443, path="/ready?deep=1", host_header="[2001:db8::5]:8443"
            ),
        ),
        (
            "https://{address}/status",
            "10.0.0.5",
            None,
            Endpoint("https", "10.0.0.5", 443, path="/status", host_header="10.0.0.5"),
        ),
        (
            "tcp://{address}:{port}",
            "127.0.0.2",
            65535,
            Endpoint("tcp", "127.0.0.2", 65535, path="", host_header=""),
        ),
        (
            "tcp://{address}:443",
            "2001:db8::5",
            None,
            Endpoint("tcp", "2001:db8::5", 443, path="", host_header=""),
        ),
    ],
)
def test_a_check_gives_the_endpoint_for_an_address(
    template: str, address: str, port: int | None, expected: Endpoint
) -> None:
    scheme = template.split("://", 1)[0]
    endpoint = CheckTemplate(scheme, template).endpoint(address, port)
    assert endpoint == expected
    # The prober function's request carries it as a URL; its side gets the same endpoint back.
    assert parse_url(endpoint.url) == endpoint


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "not printable"),
        ("http://127.0.0.1:80/a b", "not printable"),
        ("http://127.0.0.1:80/\r\nX-Injected: 1", "not printable"),
        ("ftp://127.0.0.1:21/", "scheme"),
        ("http://user:secret@127.0.0.1:80/", "credentials"),
        ("http://localhost:80/health", "IP address"),
        ("http://[127.0.0.1]:80/", "brackets"),
        ("tcp://127.0.0.1", "tcp needs a port"),
        ("tcp://127.0.0.1:80/health", "tcp takes no path"),
        ("http://127.0.0.1:0/", "port 0"),
        ("http://127.0.0.1:99999/", "out of range"),
    ],
)
def test_a_url_a_probe_must_not_send_is_refused_with_why(url: str, reason: str) -> None:
    with pytest.raises(BadUrl, match=reason):
        parse_url(url)


@pytest.mark.parametrize(
    "fields",
    [
        {"scheme": "http", "host": "lb1.example.com", "port": 80, "path": "/", "host_header": "x"},
        {"scheme": "http", "host": "10.0.0.5", "port": 80, "path": "/\r\nX: 1", "host_header": "x"},
        {"scheme": "http", "host": "10.0.0.5", "port": 0, "path": "/", "host_header": "x"},
        {"scheme": "ftp", "host": "10.0.0.5", "port": 21, "path": "/", "host_header": "x"},
        {"scheme": "tcp", "host": "10.0.0.5", "port": 80, "path": "/health", "host_header": ""},
        {"scheme": "http", "host": "10.0.0.5", "port": 80, "path": "", "host_header": ""},
    ],
)
def test_no_endpoint_can_be_made_that_parse_url_would_refuse(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - ipaddress's and the endpoint's own refusals
        Endpoint(**fields)  # type: ignore[arg-type]
