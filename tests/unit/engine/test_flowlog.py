"""Flow-log aggregation: the exact v2 line, custom formats and versions, intervals, REJECT with its
reason, ICMP ports, AWS's tcp-flags bitmask, infrastructure traffic left out."""
from __future__ import annotations

from ipaddress import ip_network

import pytest

from emulator.engine.flowlog import DEFAULT_FORMAT, EniIdentity, FlowLog, parse_format, render
from emulator.engine.packet import parse
from emulator.engine.verdict import (
    ACCEPT,
    DROP,
    ENI_SG_RULES_MISMATCH,
    INFRASTRUCTURE,
    RULE_MATCH,
    TRACKED_RESPONSE,
    Verdict,
)
from emulator.errors import FlowLogFormatError

from .helpers import icmp, tcp, udp

WALL = 1_700_000_000.0          # unix time at engine time 0
IDS = {"web": EniIdentity.of("lab", "web", "public", "123456789012")}
VPC = (ip_network("10.0.0.0/16"), ip_network("fd00:10::/56"))
OK = Verdict(ACCEPT, RULE_MATCH)
REPLY = Verdict(ACCEPT, TRACKED_RESPONSE)
NO = Verdict(DROP, ENI_SG_RULES_MISMATCH)


def flowlog(interval: float = 10, now: float = 3.0) -> FlowLog:
    return FlowLog(IDS, VPC, interval, WALL, now)


def test_the_default_format_is_aws_version_2_with_14_fields():
    log = flowlog()
    syn = parse(tcp("198.51.100.7", "10.0.1.10", 40000, 22))
    log.record("web", syn, False, NO, 3.2)
    log.record("web", syn, False, NO, 4.9)
    [record] = log.current()
    line = render(record)
    assert line == (f"2 123456789012 {IDS['web'].interface_id} 198.51.100.7 10.0.1.10 40000 22 6 2 "
                    f"{2 * syn.length} 1700000003 1700000004 REJECT OK")
    assert len(line.split()) == 14


def test_ids_are_stable_and_aws_shaped():
    again = EniIdentity.of("lab", "web", "public", "123456789012")
    ids = IDS["web"]
    assert again == ids
    assert ids.interface_id.startswith("eni-") and len(ids.interface_id) == 4 + 17
    assert ids.instance_id.startswith("i-") and ids.vpc_id.startswith("vpc-")
    assert EniIdentity.of("other", "web", "public", "1").interface_id != ids.interface_id


def test_each_direction_and_action_is_its_own_record():
    log = flowlog()
    log.record("web", parse(tcp("198.51.100.7", "10.0.1.10", 40000, 80)), False, OK, 3.0)
    log.record("web", parse(tcp("10.0.1.10", "198.51.100.7", 80, 40000, "SA")), True, REPLY, 3.1)
    log.record("web", parse(tcp("198.51.100.7", "10.0.1.10", 40001, 8080)), False, NO, 3.2)
    lines = sorted(render(r) for r in log.current())
    assert [line.split()[3:7] + line.split()[12:13] for line in lines] == [
        ["10.0.1.10", "198.51.100.7", "80", "40000", "ACCEPT"],
        ["198.51.100.7", "10.0.1.10", "40000", "80", "ACCEPT"],
        ["198.51.100.7", "10.0.1.10", "40001", "8080", "REJECT"],
    ]


def test_tcp_flags_are_ored_with_aws_bits_only():
    log = flowlog()
    log.record("web", parse(tcp("10.0.1.10", "198.51.100.7", 80, 40000, "SA")), True, OK, 3.0)
    log.record("web", parse(tcp("10.0.1.10", "198.51.100.7", 80, 40000, "PA", b"x")), True, OK, 3.1)
    log.record("web", parse(tcp("10.0.1.10", "198.51.100.7", 80, 40000, "FA")), True, OK, 3.2)
    log.record("web", parse(tcp("198.51.100.7", "10.0.1.10", 40001, 22, "S")), False, NO, 3.3)
    flags = {r["srcport"]: r["tcp-flags"] for r in log.current()}
    assert flags == {"80": "19", "40001": "2"}      # SYN-ACK (18) | FIN (1); a lone SYN is 2


def test_icmp_records_have_ports_0_0_and_udp_keeps_ports():
    log = flowlog()
    log.record("web", parse(icmp("198.51.100.7", "10.0.1.10", 8, 0, ident=77)), False, OK, 3.0)
    log.record("web", parse(udp("10.0.1.10", "10.0.2.10", 5000, 53)), True, OK, 3.0)
    fields = {r["protocol"]: (r["srcport"], r["dstport"], r["tcp-flags"]) for r in log.current()}
    assert fields == {"1": ("0", "0", "0"), "17": ("5000", "53", "0")}


def test_custom_format_picks_fields_and_the_highest_version():
    log = flowlog()
    log.record("web", parse(tcp("10.0.1.10", "198.51.100.7", 40000, 443)), True, OK, 3.0)
    log.record("web", parse(tcp("10.0.1.10", "10.0.2.10", 40000, 3306)), True, NO, 3.0)
    by_dst = {r["dstaddr"]: r for r in log.current()}
    v3 = parse_format("${version} ${instance-id} ${tcp-flags} ${type} ${pkt-dstaddr}")
    assert render(by_dst["198.51.100.7"], v3) == f"3 {IDS['web'].instance_id} 2 IPv4 198.51.100.7"
    v5 = parse_format("version,flow-direction,traffic-path,action,reject-reason")
    assert render(by_dst["198.51.100.7"], v5) == "5 egress 8 ACCEPT -"
    assert render(by_dst["10.0.2.10"], v5) == f"5 egress 1 REJECT {ENI_SG_RULES_MISMATCH}"
    assert render(by_dst["10.0.2.10"], parse_format("srcaddr action")) == "10.0.1.10 REJECT"


@pytest.mark.parametrize("text", ["", "version nosuchfield", "${srcaddr} ${bogus}"])
def test_unknown_fields_are_refused(text):
    with pytest.raises(FlowLogFormatError, match="flow-log field"):
        parse_format(text)


def test_ingress_records_have_no_traffic_path_and_ipv6_type():
    log = flowlog()
    log.record("web", parse(tcp("2001:db8:ff::10", "fd00:10:0:1::10", 40000, 80)), False, OK, 3.0)
    [record] = log.current()
    assert (record["flow-direction"], record["traffic-path"], record["type"]) == ("ingress", "-", "IPv6")
    assert record["srcaddr"] == "2001:db8:ff::10"


def test_infrastructure_traffic_is_not_logged():
    log = flowlog()
    log.record("web", parse(udp("10.0.1.10", "10.0.0.2", 5000, 53)), True, Verdict(ACCEPT, INFRASTRUCTURE), 3.0)
    assert log.current() == []


def test_intervals_close_on_wall_clock_boundaries_and_start_afresh():
    log = flowlog(interval=10, now=3.0)           # wall ...003: the interval ends at wall ...010
    syn = parse(tcp("198.51.100.7", "10.0.1.10", 40000, 22))
    log.record("web", syn, False, NO, 3.0)
    assert not log.due(9.9)
    assert log.due(10.0)
    closed = log.close(10.0)
    assert [r["packets"] for r in closed] == ["1"] and log.current() == []
    assert not log.due(19.9) and log.due(20.0)
    log.record("web", syn, False, NO, 12.0)
    log.record("web", syn, False, NO, 16.0)     # a SYN retransmit: same record, one more packet
    [record] = log.close(20.0)
    assert (record["packets"], record["start"], record["end"]) == ("2", "1700000012", "1700000016")


def test_default_format_constant_matches_aws_order():
    assert " ".join(DEFAULT_FORMAT) == ("version account-id interface-id srcaddr dstaddr srcport dstport "
                                        "protocol packets bytes start end action log-status")


def test_a_nat_gateways_eni_logs_both_legs_as_aws_shows_them():
    """AWS's "NAT gateway traffic" example: on the gateway's ENI, srcaddr/dstaddr name the ENI's own
    private IP where the packet's address is not its own, pkt-srcaddr/pkt-dstaddr the packet's, and no
    instance. The instance's own records are untouched."""
    nat = int(ip_network("10.0.1.20/32").network_address)
    ids = {**IDS, "nat-a": EniIdentity.of_gateway("lab", "nat-a", "public", "123456789012", "", nat)}
    log = FlowLog(ids, VPC, 10, WALL, 3.0)
    legs = [(parse(tcp("10.0.2.10", "203.0.113.80", 40000, 443)), False),        # from the instance
            (parse(tcp("10.0.1.20", "203.0.113.80", 40000, 443)), True),         # out, translated
            (parse(tcp("203.0.113.80", "10.0.1.20", 443, 40000, "SA")), False),  # the answer in
            (parse(tcp("203.0.113.80", "10.0.2.10", 443, 40000, "SA")), True)]   # back to the instance
    for packet, egress in legs:
        log.record("nat-a", packet, egress, OK, 3.1)
    fields = parse_format("instance-id interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr flow-direction")
    lines = [render(r, fields) for r in log.current("nat-a")]
    eni = ids["nat-a"].interface_id
    assert lines == [f"- {eni} 10.0.2.10 10.0.1.20 10.0.2.10 203.0.113.80 ingress",
                     f"- {eni} 10.0.1.20 203.0.113.80 10.0.1.20 203.0.113.80 egress",
                     f"- {eni} 203.0.113.80 10.0.1.20 203.0.113.80 10.0.1.20 ingress",
                     f"- {eni} 10.0.1.20 10.0.2.10 203.0.113.80 10.0.2.10 egress"]
    assert eni.startswith("eni-") and eni != IDS["web"].interface_id


def test_an_instance_eni_keeps_the_packets_addresses():
    log = flowlog()
    log.record("web", parse(tcp("203.0.113.80", "10.0.9.9", 443, 40000)), False, NO, 3.0)
    [record] = log.current()
    assert (record["dstaddr"], record["pkt-dstaddr"]) == ("10.0.9.9", "10.0.9.9")
