"""The emulator's own `options:` section: behaviour AWS leaves open, timeouts and quotas."""
from __future__ import annotations

import re
from dataclasses import fields as dataclass_fields

from ..model import ConntrackTimeouts, Options, Quotas
from .fields import boolean, describe, integer, mapping
from .problems import Problems, key

OPTION_KEYS = ("related_icmp", "default_egress_ipv6", "conntrack_allowance", "offload", "standby", "timeouts",
               "quotas", "flow_log_interval", "account_id")
ACCOUNT_ID = re.compile(r"[0-9]{12}")
TIMEOUT_KEYS = tuple(f.name for f in dataclass_fields(ConntrackTimeouts))
QUOTA_RANGES = {"rules_per_sg": (1, 1000), "sgs_per_eni": (1, 16), "rules_per_nacl": (2, 40)}
NO_LIMIT = 2**31 - 1


def parse_options(p: Problems, value: object) -> Options:
    """The options given, AWS-like defaults for the rest (also when an option is wrong)."""
    fields = mapping(p, value, "options", (), OPTION_KEYS)
    if fields is None:
        return Options()
    given: dict[str, object] = {}
    for name in ("related_icmp", "default_egress_ipv6", "offload", "standby"):
        if name in fields and (flag := boolean(p, fields[name], key("options", name))) is not None:
            given[name] = flag
    if "conntrack_allowance" in fields:
        allowance = integer(p, fields["conntrack_allowance"], "options.conntrack_allowance", 1, NO_LIMIT,
                            unit=" (tracked flows per ENI)")
        if allowance is not None:
            given["conntrack_allowance"] = allowance
    if "flow_log_interval" in fields:
        interval = integer(p, fields["flow_log_interval"], "options.flow_log_interval", 1, 3600,
                           unit=" of seconds")
        if interval is not None:
            given["flow_log_interval"] = interval
    if "account_id" in fields:
        account = str(fields["account_id"])
        if ACCOUNT_ID.fullmatch(account):
            given["account_id"] = account
        else:
            p.error("options.account_id", f"{describe(fields['account_id'])} is not an AWS account id",
                    "use 12 digits, e.g. \"123456789012\" (quoted)")
    if "timeouts" in fields:
        given["timeouts"] = _timeouts(p, fields["timeouts"])
    if "quotas" in fields:
        given["quotas"] = _quotas(p, fields["quotas"])
    return Options(**given)  # type: ignore[arg-type]  # each value was checked against its field above


def _timeouts(p: Problems, value: object) -> ConntrackTimeouts:
    fields = mapping(p, value, "options.timeouts", (), TIMEOUT_KEYS)
    seconds = {name: integer(p, v, key("options.timeouts", name), 1, NO_LIMIT, unit=" of seconds")
               for name, v in (fields or {}).items()}
    return ConntrackTimeouts(**{n: s for n, s in seconds.items() if s is not None})


def _quotas(p: Problems, value: object) -> Quotas:
    fields = mapping(p, value, "options.quotas", (), tuple(QUOTA_RANGES))
    limits = {name: integer(p, v, key("options.quotas", name), *QUOTA_RANGES[name])
              for name, v in (fields or {}).items()}
    quotas = Quotas(**{n: q for n, q in limits.items() if q is not None})
    if quotas.rules_per_sg * quotas.sgs_per_eni > 1000:
        p.error("options.quotas", f"rules_per_sg x sgs_per_eni = {quotas.rules_per_sg * quotas.sgs_per_eni}",
                "AWS caps the product at 1000: lower one of them")
    return quotas
