"""The gallery: a page of thumbnails in the session's order, following its filters; a card opens the subject."""

from __future__ import annotations

import time

import panel as pn

from dashboard import Explorer
from dashboard.data_store import DataStore
from dashboard.explorer import TABS
from dashboard.views import Gallery
from project import Project
from tests.image_host import ImageHost
from tests.project.test_images import _tables


def test_the_gallery_follows_the_filters_and_the_order(tiny_project):
    store = DataStore(project=tiny_project)
    gallery = Gallery(data_store=store, per_page=6)
    # Most disagreement first: subject 1 (11/18), then 2 (2/7), then 3 (never classified).
    assert gallery.shown().subject_id.tolist() == [1, 2, 3] and gallery.pages == 1
    grid = gallery._grid()
    assert isinstance(grid, pn.FlexBox) and len(grid.objects) == 3
    assert [card[1].name for card in grid.objects] == ["1", "2", "3"]
    store.min_volunteers = 3
    assert gallery.shown().subject_id.tolist() == [1] and len(gallery._grid().objects) == 1
    store.min_volunteers = 9
    assert isinstance(gallery._grid(), pn.pane.Alert)


def test_pages_hold_per_page_subjects_and_new_filters_start_at_the_first(tiny_project):
    store = DataStore(project=tiny_project)
    gallery = Gallery(data_store=store, per_page=6)
    assert gallery.pages == 1
    gallery.page = 2  # past the last page: the last page shows
    assert gallery.shown().subject_id.tolist() == [1, 2, 3]
    store.min_volunteers = 2
    assert gallery.page == 1


def test_opening_a_card_shows_the_subject_in_the_subjects_tab(tiny_project):
    explorer = Explorer(tiny_project)
    tabs = explorer.tabs()
    tabs.active = TABS.index("Gallery")
    card = explorer.gallery._grid().objects[1]
    card[1].clicks += 1  # the card's button, as a click in the browser
    assert explorer.data_store.subject == 2 and tabs.active == TABS.index("Subjects")


def test_the_captions_count_in_words_that_fit(tiny_project):
    captions = [card[2].object for card in Gallery(data_store=DataStore(project=tiny_project))._grid().objects]
    # Subject 1: three volunteers, two consensus boxes; subject 2: two volunteers, one box; 3: never classified.
    assert "3 volunteers · 2 consensus boxes" in captions[0]
    assert "2 volunteers · 1 consensus box ·" in captions[1]
    assert "0 volunteers · 0 consensus boxes" in captions[2]


def test_the_page_buttons_go_only_where_there_is_a_page(tiny_project):
    store = DataStore(project=tiny_project)
    gallery = Gallery(data_store=store, per_page=6)
    previous, following = gallery.__panel__()[1]
    assert previous.disabled and following.disabled  # one page: neither button does anything (both were enabled)
    # Two pages (the bound on per_page is the views' own: the tiny project has three subjects).
    gallery.param.per_page.bounds = (1, None)
    gallery.per_page = 2  # subjects 1 and 2, then 3
    assert previous.disabled and not following.disabled
    following.clicks += 1
    assert gallery.page == 2 and not previous.disabled and following.disabled
    store.min_volunteers = 2  # new filters start at the first page, here the only one
    assert gallery.page == 1 and previous.disabled and following.disabled


def test_a_gallery_page_fetches_its_remote_pictures_a_few_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path / "cache"))
    host = ImageHost(delay=0.3)  # slow enough that fetches made one after another never overlap
    try:
        ids = list(range(1, 9))
        classifications, marks, subjects = _tables(ids, [{"0": f"{host.url}/subject_location/{i}.png"} for i in ids])
        project = Project(classifications, marks, subjects=subjects, image_hosts=(host.host,))
        gallery = Gallery(data_store=DataStore(project=project), per_page=8)
        cards = gallery._grid().objects
        assert host.most_at_once > 1 and sum(host.hits.values()) == 8  # one fetch each, several at once
        # Each card holds its own subject's thumbnail, in the page's order.
        assert [card[1].name for card in cards] == [str(i) for i in gallery.shown().subject_id]
        assert [card[0].object for card in cards] == [project.thumbnails.png(i) for i in gallery.shown().subject_id]
        assert sum(host.hits.values()) == 8  # made once, kept
    finally:
        host.close()


def test_a_host_that_does_not_answer_holds_up_neither_the_page_nor_the_session(tmp_path, monkeypatch):
    """The page shows with empty frames, and each picture fills its frame when it comes (the gallery waited for
    every fetch, so a host that stopped answering held the session for its timeout, four pictures at a time)."""
    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path / "cache"))
    host = ImageHost()
    host.answering.clear()
    try:
        ids = list(range(1, 7))
        classifications, marks, subjects = _tables(ids, [{"0": f"{host.url}/subject_location/{i}.png"} for i in ids])
        project = Project(classifications, marks, subjects=subjects, image_hosts=(host.host,))
        store = DataStore(project=project)
        recounts = []
        store.param.watch(recounts.append, "pictures_fetched")
        gallery = Gallery(data_store=store, per_page=6)
        cards = gallery._grid().objects
        assert [card[1].name for card in cards] == [str(i) for i in gallery.shown().subject_id]
        # Nothing yet, the page shown, each frame with a spinner.
        assert [(card[0].object, card[0].loading) for card in cards] == [(None, True)] * 6 and recounts == []
        host.answering.set()
        for _ in range(300):
            if all(card[0].object is not None for card in cards) and recounts:
                break
            time.sleep(0.1)
        # Each frame holds its own subject's picture, with its marks, and the page's problems were counted once.
        assert [card[0].object for card in cards] == [project.thumbnails.png(i) for i in gallery.shown().subject_id]
        assert not any(card[0].loading for card in cards)
        assert sum(host.hits.values()) == 6 and len(recounts) == 1
    finally:
        host.answering.set()
        host.close()


def test_a_thumbnail_without_its_picture_is_not_kept_on_disk_and_a_later_process_tries_again(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path / "cache"))
    host = ImageHost()
    try:
        classifications, marks, subjects = _tables([1], [{"0": f"{host.url}/subject_location/1.png"}])
        # Served first without the team's host allowed (no --image-host yet), as a host down is: the canvas alone.
        refused = Project(classifications, marks, subjects=subjects, image_hosts=())
        canvas = refused.thumbnails.png(1)
        assert refused.image_problem_counts() == {"image host not allowed": 1}
        assert not refused.thumbnails.path(1).exists()  # it was kept on disk, and shown by every later process
        allowed = Project(classifications, marks, subjects=subjects, image_hosts=(host.host,))
        assert allowed.thumbnails.png(1) != canvas and allowed.thumbnails.path(1).is_file()
        assert host.hits == {"/subject_location/1.png": 1}
    finally:
        host.close()
