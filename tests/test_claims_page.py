"""The "Does SEMA deliver?" page under AppTest: the shipped report, a missing one, a live quick re-run."""
import json

from streamlit.testing.v1 import AppTest

from conftest import PAGES_DIR
from sema_demo.claims import COMMAND
from sema_demo.ui import claims as ui_claims

PAGE = str(PAGES_DIR / "claims.py")


def texts(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "code") for e in getattr(at, kind))


def test_page_shows_the_shipped_report_with_its_command():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert "Does SEMA deliver" in at.title[0].value
    assert COMMAND in texts(at)
    table = at.dataframe[0].value
    report = ui_claims.shipped_report()
    assert list(table["id"]) == [c["id"] for c in report["claims"]]
    assert set(table["Verdict"].str.split(" ", n=1).str[1]) <= {"supported", "not supported", "inconclusive"}
    assert table["Page"].str.startswith("/").all()
    assert ui_claims.verdict_counts(report) in texts(at)
    assert len(at.get("vega_lite_chart")) == 1


def test_a_missing_report_says_how_to_make_one(monkeypatch, tmp_path):
    monkeypatch.setattr(ui_claims, "REPORT_PATH", tmp_path / "claims.json")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception and "No report found" in at.warning[0].value and not at.dataframe
    (tmp_path / "claims.json").write_text("{not json")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception and "damaged" in at.warning[0].value


def test_the_quick_rerun_reports_progress_and_shows_its_own_result(monkeypatch):
    shipped = ui_claims.shipped_report()
    calls = []

    def fake_run(quick, progress):
        calls.append(quick)
        for f in (0.0, 0.5, 1.0):
            progress(f, "step")
        return json.loads(json.dumps({**shipped, "wall_s": 12.0, "seeds": [0, 1, 2, 3, 4]}))

    monkeypatch.setattr(ui_claims, "run_claims", fake_run)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.button(key="claims_run").click().run()
    assert not at.exception and calls == [True]
    assert len(at.dataframe) == 2 and "seeds [0, 1, 2, 3, 4]" in texts(at)
