"""The package version, on the ground floor: saving, the ONNX exporter and the command line
record it without importing the package root (which would run back up the house).
``pyproject.toml`` reads it from here, so it is written once."""

__version__ = "0.1.0"
