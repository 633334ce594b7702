"""Importing real AWS configurations (AWS CLI JSON, `terraform show -json`) as topologies."""
from __future__ import annotations

from .aws import import_aws
from .build import ImportResult
from .json_source import ImportSourceError
from .output import render, write
from .terraform import import_terraform

__all__ = ["ImportResult", "ImportSourceError", "import_aws", "import_terraform", "render", "write"]
