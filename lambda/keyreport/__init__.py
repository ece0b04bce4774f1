"""keyreport: AWS IAM access keys, inventoried and shipped to Azure Monitor Log Analytics."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("keyreport")
except PackageNotFoundError:  # the Lambda zip carries the package without its metadata
    __version__ = "0.1.0"
