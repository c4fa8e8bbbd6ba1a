"""The fault report builds up across partial runs: a newer row replaces its fault and backend."""

from tests.faults.report import FaultRow, merge, render


def row(f: str, b: str, n: int = 0) -> FaultRow:
    return FaultRow(f, "i", "b", b, "succeeded", 32, n, 0, 0)


def test_a_newer_row_replaces_its_fault_and_backend_and_others_stay() -> None:
    first = render([row("a", "sqlite"), row("b", "sqlite")])
    out = merge(first, [row("a", "sqlite", 3), row("c", "postgresql")])
    lines = out.splitlines()
    assert lines[:2] == first.splitlines()[:2]
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["b", "a", "c"]
    assert "| 3 |" in lines[3]
    assert merge("", [row("a", "sqlite")]) == render([row("a", "sqlite")])
