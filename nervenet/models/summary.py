"""``model.summary()``: the Keras-style table of layers, output shapes and parameter counts.

A functional model gets a fourth column, "Connected to": where each layer's inputs come from,
written as Keras does, ``layer_name[node index][tensor index]``; its Input layers are listed.
"""

from __future__ import annotations


def _shape_text(shape) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (
        ",)" if len(shape) == 1 else ")")


def _count(weights) -> int:
    return int(sum(w.size for w in weights))


def summary_lines(model, line_length: int | None = None) -> list[str]:
    """The lines of the summary table (what ``print_summary`` prints)."""
    graph = getattr(model, "_graph", None)
    if graph is None:
        line_length = line_length or 80
        columns = [int(line_length * 0.45), int(line_length * 0.33)]
        headers = ["Layer (type)", "Output Shape", "Param #"]
        rows_layers = model.layers
    else:
        line_length = line_length or 110
        columns = [int(line_length * 0.30), int(line_length * 0.22), int(line_length * 0.12)]
        headers = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
        rows_layers = graph.layers
    # the first column grows to fit the longest "name (Type)", and the table with it
    widest = max((len(f"{layer.name} ({type(layer).__name__})") + 2 for layer in rows_layers),
                 default=0)
    if widest > columns[0]:
        line_length += widest - columns[0]
        columns[0] = widest
    columns.append(line_length - sum(columns))

    def row(*cells) -> str:
        return "".join(f" {cell}".ljust(width) for cell, width in zip(cells, columns)).rstrip()

    lines = [f'Model: "{model.name}"', "_" * line_length, row(*headers), "=" * line_length]
    for index, layer in enumerate(rows_layers):
        params = layer.count_params() if layer.built else 0
        cells = [f"{layer.name} ({type(layer).__name__})", _shape_text(layer.output_shape),
                 f"{params:,}"]
        if graph is None:
            lines.append(row(*cells))
        else:
            sources = graph.connections(layer) or [""]
            lines.append(row(*cells, sources[0]))
            lines += [row("", "", "", source) for source in sources[1:]]
            if index < len(rows_layers) - 1:
                lines.append("_" * line_length)
    lines.append("=" * line_length)
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    lines += [f"Total params: {trainable + non_trainable:,}",
              f"Trainable params: {trainable:,}",
              f"Non-trainable params: {non_trainable:,}",
              "_" * line_length]
    return lines


def print_summary(model, print_fn=None, line_length: int | None = None) -> None:
    """Print the summary table, one line per ``print_fn`` call (default ``print``)."""
    if not model.built:
        raise ValueError(f"summary: model {model.name!r} is not built yet; call it on data, "
                         "fit it, or give its first layer an input shape (or start with Input)")
    print_fn = print if print_fn is None else print_fn
    for line in summary_lines(model, line_length):
        print_fn(line)
