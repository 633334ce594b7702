"""Importing real AWS configurations (AWS CLI JSON, `terraform show -json`) as topologies."""
from __future__ import annotations

from .aws import import_aws
from .build import ImportResult
from .json_source import ImportSourceError
from .terraform import import_terraform
from .output import render, write

__all__ = ["ImportResult", "ImportSourceError", "import_aws", "import_terraform", "render", "write"]
