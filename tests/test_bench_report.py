"""The benchmark report keeps the sections it did not run, and never drops one a hand edit left unclosed."""

from __future__ import annotations

import pytest

from bench.harness import Row, Status
from bench.report import SectionResult, write_markdown


def _result(name: str) -> SectionResult:
    return SectionResult(name=name, title=name.upper(), about="What.",
                         rows=[Row("case", {"x": 1}, target="x >= 1", status=Status.PASS)])


def test_a_rewrite_keeps_other_sections_and_refuses_an_unclosed_one(tmp_path) -> None:
    doc = tmp_path / "BENCHMARKS.md"
    write_markdown(doc, {"date": "today"}, "cmd", [_result("a"), _result("b")], ["a", "b"])
    write_markdown(doc, {"date": "today"}, "cmd", [_result("a")], ["a", "b"])
    text = doc.read_text()
    assert "<!-- bench:b -->" in text and "<!-- /bench:b -->" in text  # b was not run, and is kept
    broken = text.replace("<!-- /bench:b -->\n", "")
    doc.write_text(broken)
    with pytest.raises(ValueError, match="b lack"):
        write_markdown(doc, {"date": "today"}, "cmd", [_result("a")], ["a", "b"])
    assert doc.read_text() == broken  # nothing written
