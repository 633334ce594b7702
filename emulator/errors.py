"""Errors a user can cause. The CLI prints them on one line and exits non-zero."""
from __future__ import annotations


class EmulatorError(Exception):
    """Base for every user-caused error; the message says what to do."""

    exit_code = 1


class TopologyError(EmulatorError):
    """A topology file has one or more problems; each names the file and dotted path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class LabError(EmulatorError):
    """A lab cannot be built, found or changed."""


class PermissionRequired(EmulatorError):
    """The command touches the kernel and needs root."""


class AwsApiError(EmulatorError):
    """A live SG change refused the way the EC2 API would (`code` is AWS's error code)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(f"{code}: {message}")
