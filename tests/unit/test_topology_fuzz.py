"""parse() on arbitrary data: only ever a Loaded (which then round-trips) or a TopologyError."""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.errors import TopologyError
from emulator.topology import dump, load, parse

from .test_topology_support import base_doc

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"
SEEDS = [base_doc(), *(yaml.safe_load(p.read_text()) for p in sorted(TOPOLOGIES.glob("*.yaml")))]
# Keys and strings of the schema, so random documents get past the first mapping check.
VOCABULARY = ["name", "vpc", "cidr", "ipv6_cidr", "subnets", "security_groups", "id", "description", "ingress",
              "egress", "protocol", "ports", "icmp_type", "icmp_code", "group", "instances", "subnet", "private_ip",
              "ipv6", "public_ip", "services", "type", "port", "to", "conntrack", "tcp_established", "udp",
              "udp_stream", "internet", "ip", "options", "related_icmp", "default_egress_ipv6", "timeouts",
              "quotas", "rules_per_sg", "sgs_per_eni", "conntrack_allowance", "default", "tcp", "icmp", "all",
              "-1", "http", "ssh", "http-proxy", "udp-echo", "web-sg", "app-sg", "public", "web", "app",
              "10.0.0.0/16", "10.0.1.0/24", "10.0.1.10", "0.0.0.0/0", "::/0", "fd00:10::/56",
              "fd00:10:0:1::/64", "fd00:10:0:1::10", "203.0.113.10", "80-90", "app:8080", "sg-0123abcd"]
scalars = (st.none() | st.booleans() | st.integers(-70000, 500000) | st.integers() | st.floats()
           | st.sampled_from(VOCABULARY) | st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(VOCABULARY) | scalars.filter(lambda v: v == v), inner,
                                        max_size=5),
                      max_leaves=30)


def _parse_or_reject(data: object) -> None:
    try:
        loaded = parse(data, "fuzz.yaml", "fuzz")
    except TopologyError as exc:
        assert exc.problems and all(p.startswith("fuzz.yaml") for p in exc.problems)
        return
    assert parse(dump(loaded.topology), "fuzz.yaml", "fuzz").topology == loaded.topology


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_random_data_never_raises_anything_else(data):
    _parse_or_reject(data)


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _paths(v, (*prefix, i))
    return found


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.data())
def test_valid_documents_with_one_part_replaced_never_raise_anything_else(seed, data):
    doc = copy.deepcopy(seed)
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(values)
    _parse_or_reject(doc)


YAML_FRAGMENTS = ["vpc:", "  cidr: 10.0.0.0/16", "subnets:", "- {name: a, cidr: 10.0.1.0/24}", "a: 2001-13-45",
                  "b: !!int x", "c: !!float abc", "d: &x [*x]", "? [a]\n: b", "<<: 5", "e: !!binary xyz=",
                  "f: !!python/object:os.system x", "[", "{", "'", '"', "\t", "---", "...", ": :", "- - -",
                  "\x00", "\ufeff", "name: é", "g: 1e999", "h: 0x1F"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(YAML_FRAGMENTS) | st.text(max_size=10), max_size=8))
def test_any_file_content_loads_or_is_a_topology_error(lines):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
        try:
            load(path)
        except TopologyError as exc:
            assert exc.problems and all(p.startswith(str(path)) for p in exc.problems)
