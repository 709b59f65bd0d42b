"""Which releases changed: fingerprints of files, and the selectors built from them."""

from __future__ import annotations

from pathlib import Path

from gitops_glue.deploy.changed import _hash_tree, compare


def test_nothing_deployed_yet_means_everything_changed() -> None:
    now = {"stg/a": ("a", "1"), "stg/b": ("b", "2")}
    report = compare("staging", now, None, None, "none")
    assert (report.changed, report.unchanged, report.selectors) == (
        ["a", "b"],
        [],
        ["name=a", "name=b"],
    )
    assert report.to_json()["selector_args"] == "-l name=a -l name=b"
    assert "(nothing deployed yet)" in report.text()


def test_only_releases_whose_fingerprint_differs_are_selected() -> None:
    old = {"stg/a": ("a", "1"), "stg/b": ("b", "2"), "stg/gone": ("gone", "9")}
    now = {"stg/a": ("a", "1"), "stg/b": ("b", "3"), "stg/new": ("new", "4")}
    report = compare("staging", now, old, "c0ffee" * 6 + "abcd", "record")
    assert report.changed == ["b", "new"]
    assert report.unchanged == ["a"]
    assert report.removed == ["gone"]
    assert report.selectors == ["name=b", "name=new"]
    text = report.text()
    assert text.startswith("staging: 2 release(s) changed since c0ffeec0ff (record)")
    assert "removed from helmfile (not uninstalled by apply): gone" in text
    assert compare("staging", old, old, "x", "--since").selectors == []


def test_a_name_in_two_namespaces_is_selected_with_its_namespace() -> None:
    now = {"one/web": ("web", "1"), "two/web": ("web", "2")}
    old = {"one/web": ("web", "1"), "two/web": ("web", "0")}
    assert compare("prod", now, old, "x", "record").selectors == ["name=web,namespace=two"]


def test_a_chart_folder_fingerprint_follows_its_files(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("name: app\n")
    (chart / "templates/a.yaml").write_text("kind: ConfigMap\n")
    first = _hash_tree(chart)
    assert _hash_tree(chart) == first
    (chart / "templates/a.yaml").write_text("kind: Secret\n")
    changed = _hash_tree(chart)
    assert changed != first
    (chart / "templates/a.yaml").rename(chart / "templates/b.yaml")  # a rename counts too
    assert _hash_tree(chart) not in (first, changed)
    assert _hash_tree(tmp_path / "missing") == _hash_tree(tmp_path / "empty-or-missing")
