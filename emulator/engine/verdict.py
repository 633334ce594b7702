"""What the engine decided about one packet, and why (reason codes shared with flow logs and explain)."""
from __future__ import annotations

from emulator.model import Rule

ACCEPT = "ACCEPT"
DROP = "DROP"

# ACCEPT reasons
RULE_MATCH = "RULE_MATCH"                              # a new tracked flow, allowed by `rule`
UNTRACKED_ALLOWED_BY_RULE = "UNTRACKED_ALLOWED_BY_RULE"
TRACKED_RESPONSE = "TRACKED_RESPONSE"                  # reply direction of a tracked flow
TRACKED_FLOW = "TRACKED_FLOW"                          # original direction of a tracked flow
RELATED_ICMP = "RELATED_ICMP"                          # ICMP error about a flow of this ENI
OTHER_PROTO_600S_WINDOW = "OTHER_PROTO_600S_WINDOW"    # peer answering with the same protocol
FRAGMENT_OF_FLOW = "FRAGMENT_OF_FLOW"                  # non-initial fragment of a known flow
INFRASTRUCTURE = "INFRASTRUCTURE"                      # ND/RA, link-local, VPC DNS: never filtered
NAT_GATEWAY_FORWARD = "NAT_GATEWAY_FORWARD"            # a NAT gateway's ENI, within its subnet: nothing applies
# DROP reasons
ENI_SG_RULES_MISMATCH = "ENI_SG_RULES_MISMATCH"
CONNTRACK_ALLOWANCE_EXCEEDED = "CONNTRACK_ALLOWANCE_EXCEEDED"
MALFORMED = "MALFORMED"
UNTRACKED_RULE_REVOKED = "UNTRACKED_RULE_REVOKED"
FRAGMENT = "FRAGMENT"
ENI_SOURCE_DEST_CHECK_RESTRICTION = "ENI_SOURCE_DEST_CHECK_RESTRICTION"   # not the ENI's own address
# Network ACLs (Reachability Analyzer's code for a NACL drop; the ACCEPT twin names a NACL pass)
SUBNET_ACL_RESTRICTION = "SUBNET_ACL_RESTRICTION"
SUBNET_ACL_ALLOWED = "SUBNET_ACL_ALLOWED"

REASONS = (RULE_MATCH, UNTRACKED_ALLOWED_BY_RULE, TRACKED_RESPONSE, TRACKED_FLOW, RELATED_ICMP,
           OTHER_PROTO_600S_WINDOW, FRAGMENT_OF_FLOW, INFRASTRUCTURE, NAT_GATEWAY_FORWARD, ENI_SG_RULES_MISMATCH,
           CONNTRACK_ALLOWANCE_EXCEEDED, MALFORMED, UNTRACKED_RULE_REVOKED, FRAGMENT,
           ENI_SOURCE_DEST_CHECK_RESTRICTION, SUBNET_ACL_RESTRICTION, SUBNET_ACL_ALLOWED)

_PHRASES = {
    RULE_MATCH: "new flow allowed",
    UNTRACKED_ALLOWED_BY_RULE: "allowed by the current rules",
    TRACKED_RESPONSE: "reply of a tracked flow (no rule needed)",
    TRACKED_FLOW: "packet of an open tracked flow (no rule needed)",
    RELATED_ICMP: "ICMP error about an open flow (related, no rule needed)",
    OTHER_PROTO_600S_WINDOW: "same protocol back from the peer within its 600 s window",
    FRAGMENT_OF_FLOW: "non-initial fragment of an open flow",
    INFRASTRUCTURE: "infrastructure traffic (neighbour discovery, link-local, VPC DNS): SGs do not apply",
    NAT_GATEWAY_FORWARD: "forwarded by the NAT gateway (it has no security group, and no subnet boundary "
                         "is crossed between it and this peer)",
    ENI_SG_RULES_MISMATCH: "no security group rule allows it",
    CONNTRACK_ALLOWANCE_EXCEEDED: "the ENI's conntrack allowance is used up",
    MALFORMED: "malformed packet",
    UNTRACKED_RULE_REVOKED: "untracked flow whose allowing rule is gone",
    FRAGMENT: "non-initial fragment that matches no flow and no all-ports rule",
    ENI_SOURCE_DEST_CHECK_RESTRICTION: "source/destination check: the instance is neither its source "
                                       "(egress) nor its destination (ingress)",
    SUBNET_ACL_RESTRICTION: "the subnet's network ACL denies it",
    SUBNET_ACL_ALLOWED: "the subnet's network ACL allows it",
}


class Verdict:
    """ACCEPT or DROP with its reason code; `rule`/`sg_id` when a rule decided."""

    __slots__ = ("action", "reason", "rule", "sg_id", "tracked")

    def __init__(self, action: str, reason: str, rule: Rule | None = None, sg_id: str | None = None,
                 tracked: bool | None = None):
        self.action = action
        self.reason = reason
        self.rule = rule
        self.sg_id = sg_id
        self.tracked = tracked      # None when the packet belongs to no flow (or was dropped first)

    @property
    def accepted(self) -> bool:
        return self.action == ACCEPT

    def describe(self) -> str:
        """One line, e.g. "ACCEPT by sg-0ab… ingress tcp 80 from 0.0.0.0/0 (untracked)"."""
        if self.rule is not None:
            text = f"{self.action} by {self.sg_id} {self.rule.describe()}"
            if self.reason not in (RULE_MATCH, UNTRACKED_ALLOWED_BY_RULE):
                text += f": {_PHRASES[self.reason]}"
        else:
            text = f"{self.action}: {_PHRASES.get(self.reason, self.reason)}"
        if self.tracked is not None:
            text += " (tracked)" if self.tracked else " (untracked)"
        return text

    def __repr__(self) -> str:
        return f"<Verdict {self.action} {self.reason} {self.sg_id or ''} tracked={self.tracked}>"
