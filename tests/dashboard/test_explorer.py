"""The notebook entry point: Explorer from tables or files, and its selection as a DataFrame."""

from __future__ import annotations

import panel as pn

from dashboard import Explorer


def test_from_tables_and_selection(tiny_tables):
    explorer = Explorer.from_tables(tiny_tables["classifications"], tiny_tables["marks"],
                                    consensus=tiny_tables["consensus"], links=tiny_tables["links"])
    assert explorer.selection.subject_id.tolist() == [1, 2]
    explorer.agreement.select_iou_size((5, 0.3, 15, 0.5))  # bob's loose box on subject 2
    selection = explorer.selection
    assert selection.subject_id.tolist() == [2]
    selection.loc[:, "n_marks"] = -1  # a copy: the session's table is untouched
    assert explorer.data_store.subjects.n_marks.tolist() == [2]
    assert pn.panel(explorer).get_root() is not None


def test_from_paths_reads_a_classification_export(demo_export):
    explorer = Explorer.from_paths([demo_export], workflow_id=9001, workflow_version="13.10")
    assert len(explorer.project.classifications) == 912
    assert explorer.project.title == demo_export.name


def test_a_tab_says_it_is_being_prepared_until_its_views_are_made(tiny_tables):
    from dashboard.explorer import TABS

    explorer = Explorer.from_tables(tiny_tables["classifications"], tiny_tables["marks"],
                                    consensus=tiny_tables["consensus"], links=tiny_tables["links"])
    tabs = explorer.tabs()
    agreement = tabs[TABS.index("Agreement")]
    # Not made yet: it says so (a blank tab said nothing for the seconds its plots took on a large project).
    assert [type(pane).__name__ for pane in agreement] == ["HTML"]
    assert "Preparing the Agreement tab" in agreement[0].object
    tabs.active = TABS.index("Agreement")
    made = list(agreement)
    assert len(made) == 1 and type(made[0]).__name__ != "HTML"  # the plots' layout in its place
    tabs.active = 0
    tabs.active = TABS.index("Agreement")  # made once
    assert list(agreement) == made


def test_the_cutout_grows_to_the_room_the_page_has(tiny_tables):
    from dashboard.explorer import ABOVE_FRAME, BESIDE_FRAME, LARGEST_FRAME, fitted_frame_size

    # A laptop (1,366 x 700 and a 1,069 px main area) keeps the default; a 1,920 x 960 window gives 750 px (the
    # window's height, less the page above the frame, is the limit), a 4K one no more than LARGEST_FRAME.
    assert fitted_frame_size(1069, 700, 600) == 600
    assert fitted_frame_size(1623, 960, 600) == 750 == (960 - ABOVE_FRAME) // 50 * 50
    assert fitted_frame_size(1203, 2000, 600) == (1203 - BESIDE_FRAME) // 50 * 50 == 700  # the width's limit
    assert fitted_frame_size(3800, 2100, 600) == LARGEST_FRAME
    explorer = Explorer.from_tables(tiny_tables["classifications"], tiny_tables["marks"],
                                    consensus=tiny_tables["consensus"], links=tiny_tables["links"])
    cutout = explorer.views["cutout"]
    layout = cutout.__panel__()
    explorer.fit_cutout(1623, 0)  # not reported yet: nothing changes
    assert cutout.frame_size == 600
    explorer.fit_cutout(1623, 960)
    figure = cutout.figure()
    assert cutout.frame_size == figure.frame_width == figure.frame_height == 750
    # The view widens with the frame, or the side column would overlap it (the caption stretches across it).
    assert layout.width == 750 + 40
    explorer.fit_cutout(1069, 700)
    assert cutout.frame_size == figure.frame_width == 600 and layout.width == 640
