"""One way to print a benchmark's table: rich when installed, plain text otherwise."""

from __future__ import annotations


def print_table(title: str, head: list[str], body: list[list[str]], width: int = 260) -> None:
    """Print ``body`` rows under the ``head`` columns (right-aligned), titled ``title``."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        for line in [head, *body]:
            print(" | ".join(line))
        return
    table = Table(title=title)
    for h in head:
        table.add_column(h, justify="right")
    for line in body:
        table.add_row(*line)
    Console(width=width).print(table)
