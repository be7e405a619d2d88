"""The shared CEL environment (`api.cel`): kube's libraries, cel-go's compile and run-time texts."""

from __future__ import annotations

from typing import Any

import pytest

from pykube_server.api import cel

OBJECT = {"metadata": {"name": "web", "labels": {"app": "web"}},
          "spec": {"replicas": 7, "containers": [{"name": "a", "image": "nginx:1.27"}, {"name": "b", "image": "busybox"}]}}


def run(expression: str, **variables: Any) -> Any:
    variables = {"object": OBJECT, **variables}
    return cel.to_json(cel.evaluate(cel.compile(expression, variables), variables))


@pytest.mark.parametrize(("expression", "expected"), [
    ("object.spec.replicas <= 5", False),
    ("has(object.spec.replicas) && !has(object.spec.paused)", True),
    ("object.spec.containers.all(c, c.image.contains(':'))", False),
    ("object.spec.containers.exists(c, c.image.startsWith('nginx'))", True),
    ("object.spec.containers.map(c, c.name).join(',')", "a,b"),
    ("object.spec.containers.filter(c, c.name == 'b').size()", 1),
    ("object.metadata.name.matches('^w[a-z]+$')", True),
    ("'a,b,c'.split(',')", ["a", "b", "c"]),
    ("'Hello'.lowerAscii() + 'x'.upperAscii()", "helloX"),
    ("'  x '.trim()", "x"),
    ("'banana'.indexOf('an') == 1 && 'banana'.lastIndexOf('an') == 3", True),
    ("'hello'.substring(1, 3)", "el"),
    ("'a-b'.replace('-', '_')", "a_b"),
    ("'abc123def'.find('[0-9]+')", "123"),
    ("'a1b22'.findAll('[0-9]+')", ["1", "22"]),
    ("[1, 2, 3].sum() == 6 && [3, 1].min() == 1 && [3, 1].max() == 3 && [1, 2].isSorted()", True),
    ("quantity('1Gi').isGreaterThan(quantity('500Mi'))", True),
    ("quantity('1.5').add(quantity('500m')).asInteger()", 2),
    ("quantity('100m').compareTo(quantity('0.1'))", 0),
    ("isQuantity('1Gi') && !isQuantity('1Gx')", True),
    ("url('https://example.com:8443/p?q=1').getHostname()", "example.com"),
    ("url('https://example.com:8443/p').getPort()", "8443"),
    ("url('https://example.com/p?q=1&q=2').getQuery()", {"q": ["1", "2"]}),
    ("isURL('https://example.com') && !isURL('not a url')", True),
])
def test_library(expression: str, expected: Any) -> None:
    assert run(expression) == expected


def test_compile_errors_name_the_place_as_cel_go_does() -> None:
    with pytest.raises(cel.CompileError) as caught:
        cel.compile("object.x > limit", ["object"])
    assert caught.value.detail == ("ERROR: <input>:1:12: undeclared reference to 'limit' (in container '')\n"
                                   " | object.x > limit\n"
                                   " | ...........^")
    with pytest.raises(cel.CompileError) as caught:
        cel.compile("'x'.nosuch()", ["object"])
    assert "undeclared reference to 'nosuch'" in caught.value.detail
    with pytest.raises(cel.CompileError) as caught:
        cel.compile("object.x <=", ["object"])
    assert caught.value.detail.startswith("ERROR: <input>:1:")
    assert "Syntax error" in caught.value.detail


def test_macro_variables_are_declared_in_their_body_only() -> None:
    cel.compile("object.items.all(i, i > 0)", ["object"])
    with pytest.raises(cel.CompileError):
        cel.compile("object.items.all(i, i > 0) && i > 0", ["object"])


def test_programs_are_cached() -> None:
    assert cel.compile("object.a == 1", ["object"]) is cel.compile("object.a == 1", ("object",))


@pytest.mark.parametrize(("expression", "detail"), [
    ("object.spec.missing == 1", "no such key: missing"),
    ("object.spec.replicas > 2.5", "no such overload"),
    ("quantity('1Gx')", "quantities must match the regular expression "
                        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
])
def test_runtime_errors_in_cel_go_words(expression: str, detail: str) -> None:
    with pytest.raises(cel.EvalError) as caught:
        run(expression)
    assert caught.value.detail == detail


# -- what kube 1.33's CEL environment has beyond the basics ----------------------------------
@pytest.mark.parametrize(("expression", "expected"), [
    # type identifiers are values, not undeclared references (cel-go's checker knows them)
    ("type(object.metadata.name) == string && type(object.spec.replicas) == int", True),
    ("type(1.5) == double && type(true) == bool && type(object) == map && type([]) == list", True),
    ("type(null) == null_type && type(object.spec.replicas) != string", True),
    # optional types: optional.of/none/ofNonZeroValue, hasValue/value/orValue/or, .? and [?]
    ("optional.of(1).hasValue() && !optional.none().hasValue()", True),
    ("optional.none().orValue('dflt')", "dflt"),
    ("optional.none().or(optional.of(2)).value()", 2),
    ("optional.ofNonZeroValue('').hasValue() || optional.ofNonZeroValue(0).hasValue()", False),
    ("object.?spec.?replicas.orValue(0)", 7),
    ("object.?spec.?paused.orValue(false)", False),
    ("object.?status.?phase.hasValue()", False),
    ("object.?metadata.labels.app.value()", "web"),  # a selection after `.?` stays optional
    ("object.metadata.labels[?'app'].orValue('none') + object.metadata.labels[?'tier'].orValue('none')", "webnone"),
    ("object.spec.containers[?5].hasValue() || object.spec.containers[?0].value().name == 'a'", True),
    ("object.?spec.replicas == optional.of(7)", True),
    ("'a.?b[?c]'.size()", 8),  # string literals are not rewritten
    # kube's IP and CIDR libraries
    ("ip('10.0.0.1').family() == 4 && ip('fd00::1').family() == 6", True),
    ("cidr('10.0.0.0/8').containsIP(ip('10.1.2.3')) && !cidr('10.0.0.0/8').containsIP('11.0.0.1')", True),
    ("cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16') && !cidr('10.1.0.0/16').containsCIDR(cidr('10.0.0.0/8'))", True),
    ("isIP('10.0.0.1') && !isIP('10.0.0.256') && !isIP('010.0.0.1') && !isIP('fe80::1%eth0')", True),
    ("isCIDR('10.0.0.0/8') && !isCIDR('10.0.0.0') && !isCIDR('10.0.0.0/33')", True),
    ("string(cidr('10.1.2.3/8').ip()) + ' ' + string(cidr('10.1.2.3/8').masked())", "10.1.2.3 10.0.0.0/8"),
    ("cidr('fd00::/64').prefixLength()", 64),
    ("ip('127.0.0.1').isLoopback() && ip('0.0.0.0').isUnspecified() && ip('8.8.8.8').isGlobalUnicast()", True),
    ("ip('169.254.1.1').isLinkLocalUnicast() && ip('224.0.0.1').isLinkLocalMulticast()", True),
    ("ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:DB8::1')", True),
    ("ip('10.0.0.1') == ip('10.0.0.1') && ip('10.0.0.1') != ip('10.0.0.2')", True),
    # cel-go's strings.format
    ("'%s has %d replicas'.format([object.metadata.name, object.spec.replicas])", "web has 7 replicas"),
    ("'%.2f|%e|%x|%X|%o|%b|100%%'.format([3.14159, 1234.5, 255, 255, 8, 5])",
     "3.14|1.234500e+03|ff|FF|10|101|100%"),
    ("'%s %s %s'.format([true, null, [1, 'a']])", 'true null [1, "a"]'),
    ("'%x'.format(['hi'])", "6869"),
    # kube's semver library (1.33)
    ("semver('1.2.3').isLessThan(semver('1.10.0')) && semver('2.0.0').isGreaterThan(semver('2.0.0-rc.1'))", True),
    ("semver('1.2.3-alpha.10').compareTo(semver('1.2.3-alpha.9'))", 1),
    ("semver('v1.2', true).minor() + semver('3.4.5').major() + semver('3.4.5').patch()", 10),
    ("isSemver('1.2.3') && !isSemver('1.2') && !isSemver('v1.2.3') && isSemver('v1.2', true)", True),
    # errors are values: `||` and `&&` absorb them as cel-go does
    ("true || ip('bad').family() == 4", True),
    ("false && optional.none().value() == 1", False),
])
def test_kube_133_library(expression: str, expected: Any) -> None:
    assert run(expression) == expected


@pytest.mark.parametrize(("expression", "detail"), [
    ("optional.none().value()", "optional.none() dereference"),
    ("ip('bad')", 'IP Address "bad" parse error during conversion from string: ParseAddr("bad"): unable to parse IP'),
    ("ip('::ffff:10.0.0.1')", 'IP Address "::ffff:10.0.0.1" parse error during conversion from string: '
                             "IPv4-mapped IPv6 address is not allowed"),
    ("cidr('10.0.0.0')", "network address \"10.0.0.0\" parse error during conversion from string: "
                         "netip.ParsePrefix(\"10.0.0.0\"): no '/'"),
    ("'%d'.format(['x'])", "error during formatting: decimal clause can only be used on integers, was given string"),
    ("'%s %s'.format(['x'])", "index 1 out of range"),
])
def test_library_errors(expression: str, detail: str) -> None:
    with pytest.raises(cel.EvalError) as caught:
        run(expression)
    assert caught.value.detail == detail


def test_type_names_and_namespaces_need_no_declaration_but_other_names_do() -> None:
    program = cel.compile("type(self) == string && optional.none().orValue(true) && ip.isCanonical('::1')", ["self"])
    assert program.uses == frozenset({"self"})
    with pytest.raises(cel.CompileError, match="undeclared reference to 'strin'"):
        cel.compile("type(self) == strin", ["self"])
    with pytest.raises(cel.CompileError, match="Syntax error"):
        cel.compile("[?self.x]", ["self"])  # optional list entries: not supported by the rewrite


def test_optional_old_self_value() -> None:
    """What a CRD rule with `optionalOldSelf: true` evaluates: `oldSelf` is an optional."""
    rule = cel.compile("!oldSelf.hasValue() || self >= oldSelf.value()", ["self", "oldSelf"])
    assert bool(cel.evaluate(rule, {"self": 3, "oldSelf": optional_of(None)}))
    assert bool(cel.evaluate(rule, {"self": 3, "oldSelf": optional_of(2)}))
    assert not bool(cel.evaluate(rule, {"self": 1, "oldSelf": optional_of(2)}))


def optional_of(value: Any) -> Any:
    from pykube_server.api import celoptional

    return celoptional.NONE if value is None else celoptional.of(cel.to_cel(value))
