"""The subject browser: rows follow the filters, picking a row sets the current subject."""

from __future__ import annotations

from dashboard.data_store import DataStore
from dashboard.views import SubjectBrowser
from dashboard.views.subjects import HIDE_IF_BROKEN, PLACEHOLDER_OPEN, subject_width


def test_rows_follow_the_filters_and_a_pick_sets_the_subject(tiny_project):
    store = DataStore(project=tiny_project)
    browser = SubjectBrowser(data_store=store)
    table = browser.table
    assert table.value.subject_id.tolist() == [1, 2, 3]
    assert table.value.columns[0] == "thumbnail" and table.pagination == "remote"
    store.min_volunteers = 2
    assert table.value.subject_id.tolist() == [1, 2]
    table.selection = [1]
    assert store.subject == 2


def test_remote_pages_hold_page_size_rows(tiny_project):
    browser = SubjectBrowser(data_store=DataStore(project=tiny_project), page_size=5)
    assert browser.table.page_size == 5
    browser.page_size = 7
    assert browser.table.page_size == 7


def test_thumbnail_urls_cannot_break_out_of_the_img_tag(tiny_tables, tmp_path):
    from tests.dashboard import tiny

    hostile = '"><img src=x onerror=alert(1)>.png'
    tiny_tables["subjects"].at[0, "locations"] = {"0": f"images/{hostile}"}
    root = tmp_path / "root"
    (root / "images").mkdir(parents=True)
    (root / "images" / hostile).write_bytes(b"not really a png")
    project = tiny.tiny_project(root, tiny_tables)
    cell = SubjectBrowser(data_store=DataStore(project=project)).table.value.set_index("subject_id").thumbnail[1]
    # On the grey placeholder; the only handler is the fixed one that hides a picture that fails.
    assert cell == (PLACEHOLDER_OPEN + '<img src="zoolens-images/0/images/%22%3E%3Cimg%20src%3Dx%20onerror'
                    '%3Dalert%281%29%3E.png" width="40" height="40" alt="" ' + HIDE_IF_BROKEN)


def test_the_row_of_the_current_subject_is_highlighted_whoever_picked_it(tiny_project):
    store = DataStore(project=tiny_project)
    browser = SubjectBrowser(data_store=store, page_size=5)
    assert store.subject == 1 and browser.table.selection == [0]
    store.step_subject(2)  # the keys, the gallery or a plot move the subject: the table follows
    assert store.subject == 3 and browser.table.selection == [2] and browser.table.page == 1
    store.min_volunteers = 2  # subject 3 leaves the table: nothing is highlighted
    assert browser.table.selection == []


def test_the_subject_column_is_as_wide_as_the_longest_id():
    # 13 px figures of 8.3 px each and the cell's padding; at least as wide as its title.
    assert subject_width([5, 12]) == subject_width([]) == 60
    assert subject_width([30000014, 7]) == 76 and subject_width([123456789]) == 84


def test_a_thumbnail_the_server_could_not_fetch_is_not_asked_for_again_when_the_rows_redraw(tmp_path, monkeypatch):
    from project import Project
    from tests.image_host import ImageHost, closed_host
    from tests.project.test_images import _tables

    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path / "cache"))
    closed = closed_host()
    host = ImageHost()
    try:
        classifications, marks, subjects = _tables(
            [1, 2], [{"0": f"{host.url}/subject_location/1.png"}, {"0": f"http://{closed}/subject_location/2.png"}])
        project = Project(classifications, marks, subjects=subjects, image_hosts=(host.host, closed))
        store = DataStore(project=project)
        browser = SubjectBrowser(data_store=store)
        routes = project.subject_stats.set_index("subject_id").thumbnail
        cells = browser.table.value.set_index("subject_id").thumbnail
        assert all(routes[subject_id] in cells[subject_id] for subject_id in (1, 2))  # both asked for at first
        for subject_id in (1, 2):  # what the page's requests make the server do
            project.image_file(routes[subject_id].removeprefix("zoolens-images/"))
        store.min_volunteers = 0  # the filters change: the rows are drawn again
        store.param.trigger("subjects")
        cells = browser.table.value.set_index("subject_id").thumbnail
        assert routes[1] in cells[1]  # fetched: the browser gets it from the server
        assert cells[2] == PLACEHOLDER_OPEN + "</span>"  # failed: the grey square, with no request behind it
    finally:
        host.close()
