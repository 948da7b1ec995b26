"""docs/onnx.md's operator tables list exactly what the registries convert."""

from __future__ import annotations

import re
from pathlib import Path

from nervenet import activations
from nervenet.onnx.converters import converters
from nervenet.onnx.operators import operators

DOC = (Path(__file__).resolve().parents[2] / "docs" / "onnx.md").read_text()


def _first_column(header: str) -> str:
    table = DOC.split(header, 1)[1].split("\n\n", 1)[0]
    return " ".join(line.split("|")[1] for line in table.splitlines()[2:])


def test_export_table_lists_every_converted_layer():
    listed = _first_column("| nervenet layer | ONNX operators |")
    missing = [name for name in converters.names()
               if not re.search(rf"\b{name}\b", listed)
               and not (name.startswith("Random") and "Random*" in listed)]
    assert missing == []


def test_activation_table_lists_every_activation():
    listed = _first_column("| activation | ONNX |")
    assert [n for n in activations.registry.names() if not re.search(rf"\b{n}\b", listed)] == []


def test_import_table_lists_exactly_the_operators():
    listed = set(re.findall(r"\b[A-Z][A-Za-z]+\b", _first_column("| ONNX operator | nervenet")))
    assert set(operators.names()) <= listed
