"""Every value is documented, and the chart README lists them as values.yaml says."""

from __future__ import annotations

import importlib.util
import sys

from conftest import CHART_DIR, REPO

spec = importlib.util.spec_from_file_location("values_doc", REPO / "scripts/chart/values_doc.py")
values_doc = importlib.util.module_from_spec(spec)
sys.modules["values_doc"] = values_doc
spec.loader.exec_module(values_doc)


def test_every_value_has_a_comment():
    assert values_doc.undocumented(values_doc.parse((CHART_DIR / "values.yaml").read_text())) == []


def test_documented_sections_document_every_child():
    """A mapping whose keys carry comments lists each key; none may be forgotten."""
    entries = values_doc.parse((CHART_DIR / "values.yaml").read_text())
    for entry in entries:
        if values_doc.is_section(entries, entry):
            assert all(child.description for child in values_doc.children(entries, entry)), entry.key


def test_readme_values_table_is_current():
    readme = (CHART_DIR / "README.md").read_text()
    wanted = values_doc.render_readme(readme, (CHART_DIR / "values.yaml").read_text())
    assert readme == wanted, "charts/ferrocache/README.md is stale: run scripts/chart/readme.sh"


def test_readme_lists_every_top_level_value():
    readme = (CHART_DIR / "README.md").read_text()
    for entry in values_doc.parse((CHART_DIR / "values.yaml").read_text()):
        if len(entry.path) == 1:
            assert f"| `{entry.key}` |" in readme, entry.key


def test_readme_documents_the_crd_upgrade_step():
    assert "kubectl apply --server-side -f crds/" in (CHART_DIR / "README.md").read_text()
