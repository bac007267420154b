"""The docs point at real things: every test named in docs/RELIABILITY.md exists."""
import re

from conftest import ROOT


def test_every_reliability_row_names_existing_tests():
    text = (ROOT / "docs" / "RELIABILITY.md").read_text()
    rows = [line for line in text.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) >= 20
    for row in rows:
        current = None
        for path, name, short in re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`|`::(\w+)`", row):
            current = path or current
            assert current and (ROOT / current).exists(), row
            test = name or short
            if test:
                assert f"def {test}(" in (ROOT / current).read_text(), f"{current}::{test} does not exist"
        assert current, f"row without a test: {row}"


def test_readme_starts_with_the_two_set_up_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```bash") + 1:lines.index("```bash") + 3]
    assert block[0].endswith("streamlit run app.py") and "requirements.txt" in block[0]
    assert block[1].endswith("python -m pytest") and ".[test]" in block[1]
    assert "python -m pytest" in (ROOT / ".ci" / "run").read_text()
