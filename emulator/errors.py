"""Errors a user can cause, grouped by whose fault it is (as h11 splits protocol errors by side).
The CLI prints each in one line and exits non-zero; bugs still raise.

    EmulatorError
      InputError       the file or the flags are wrong: fix the input
      HostError        this machine lacks something: run as root, install a package
      LabError         a lab cannot be built, found or changed in its current state
      AwsApiError      a live change refused the way the EC2 API would (with AWS's error code)
"""
from __future__ import annotations


class EmulatorError(Exception):
    """Base for every user-caused error; the message says what to do."""

    exit_code = 1


# --- the input is wrong -------------------------------------------------------------------------

class InputError(EmulatorError):
    """A file or a command-line value is wrong; the message names where and what."""


class TopologyError(InputError):
    """A topology file has one or more problems; each names the file and dotted path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class ImportSourceError(InputError):
    """An input file is unreadable, or a value in it is not what the documented output holds there."""


class ExplainError(InputError):
    """The question cannot be asked of this topology (unknown node, no address of that family)."""


class MatrixError(InputError):
    """A malformed --expect file or a bad question."""


class FlowLogFormatError(InputError):
    """A custom flow-log format names fields AWS does not have."""


# --- the machine lacks something ----------------------------------------------------------------

class HostError(EmulatorError):
    """This machine cannot do it as it is: a permission, a tool or a kernel feature is missing."""


class PermissionRequired(HostError):
    """The command touches the kernel and needs root."""


class ToolMissing(HostError):
    """A program sgemu runs is not installed or failed to run."""


class GraphvizError(ToolMissing):
    """`dot` is missing or failed."""


# --- the lab's state ----------------------------------------------------------------------------

class LabError(EmulatorError):
    """A lab cannot be built, found or changed."""


class AwsApiError(EmulatorError):
    """A live change refused the way the EC2 API would (`code` is AWS's error code)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(f"{code}: {message}")
