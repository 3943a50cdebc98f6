"""Name syntax messages (apimachinery validation.go) and resource quantities."""

from __future__ import annotations

from decimal import Decimal

import pytest

from podnet.model import names
from podnet.model.errors import GoValue, format_value, go_quote, go_string_map, go_string_slice
from podnet.model.quantity import QUANTITY_FORMAT_MSG, parse_quantity


def test_regex_messages_match_kubernetes() -> None:
    assert names.dns1035_label_errors("My_Svc") == [
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
        "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex "
        "used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
    ]
    assert names.dns1123_subdomain_errors("Example.com") == [
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
        "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    ]
    assert names.dns1123_label_errors("a.b") == ["must not contain dots"]
    assert names.dns1123_label_errors("a" * 64) == ["must be no more than 63 characters"]
    assert names.label_value_errors("-x") == [
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
        "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
        "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    ]


def test_qualified_names() -> None:
    assert names.qualified_name_errors("app.kubernetes.io/name") == []
    assert names.qualified_name_errors("/name") == ["prefix part must be non-empty"]
    assert names.qualified_name_errors("a/") == [
        "name part must be non-empty",
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    ]
    assert names.qualified_name_errors("a/b/c")[0].startswith("a qualified name must consist of")


def test_port_names_and_generate_name_prefix() -> None:
    assert names.port_name_errors("-http-") == ["must not begin or end with a hyphen"]
    assert names.port_name_errors("HTTP") == [
        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        "must contain at least one letter (a-z)",
    ]
    assert names.name_is_dns1035_label("web-", prefix=True) == []
    assert names.name_is_dns1035_label("web-", prefix=False) != []


def test_go_value_rendering() -> None:
    assert go_quote('a"b\\c\nd\x01é') == '"a\\"b\\\\c\\nd\\x01é"'
    assert go_string_map({"b": "2", "a": "1"}).text == 'map[string]string{"a":"1", "b":"2"}'
    assert go_string_map(None).text == "map[string]string(nil)"
    assert go_string_slice(["x", "y"]).text == '[]string{"x", "y"}'
    assert format_value(GoValue("core.Foo{}")) == "core.Foo{}"
    assert (format_value(7), format_value(True), format_value("s")) == ("7", "true", '"s"')


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("1", Decimal(1)),
        ("1Gi", Decimal(2**30)),
        ("128Mi", Decimal(128 * 2**20)),
        ("1k", Decimal(1000)),
        ("2e3", Decimal(2000)),
        ("1.5", Decimal("1.5")),
        (3, Decimal(3)),
        ("100n", Decimal("1e-7")),
    ],
)
def test_parse_quantity(text: object, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["lots", "1Gb", "", "1.2.3", "Mi", True])
def test_bad_quantity(text: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_quantity(text)
    assert str(info.value) in (QUANTITY_FORMAT_MSG, "unable to parse quantity's suffix")
