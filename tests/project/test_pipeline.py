"""One pipeline: the project layer builds, aggregates and exports without Panel, and every route
to a catalogue (the command line, a notebook's `Explorer`, the Export view's function) gives the same
bytes for the same inputs and selection, apart from the time stamp."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from project import load_project, loader_options
from project.export import export_selection
from project.selection import Selection
from tests.zoolens.test_demo import demo_files  # noqa: F401  (fixture: the demo files)
from zoolens import demo

ROOT = Path(__file__).resolve().parents[2]


def test_the_project_layer_builds_aggregates_and_exports_without_panel(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        import project
        from project.export import write_catalogue
        from project.selection import Selection
        from zoolens import demo

        files = demo.write_demo({str(tmp_path / "demo")!r})
        built = project.load_project([files.classifications, files.subjects, files.workflows],
                                     image_roots=[files.folder], method="lean", **demo.PROJECT_OPTIONS)
        written, export = write_catalogue(built, Selection(project=built), {str(tmp_path / "cat.fits")!r})
        assert len(built.consensus) > 50 and export.provenance["sky"]["method"] == "wcs"
        print(sorted(name for name in ("panel", "bokeh", "holoviews") if name in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "ZOOLENS_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "cat.fits").stat().st_size > 0


def _without_time(content: bytes, provenance: dict) -> bytes:
    """``content`` with the export's creation time (the one thing allowed to differ) blanked."""
    stamp = provenance["created_utc"].encode()
    assert stamp in content
    # FITS headers also carry it as DATE, without the zone letter.
    for text in (stamp, stamp.removesuffix(b"Z")):
        content = content.replace(text, b"X" * len(text))
    return content


def _fits_provenance(content: bytes) -> dict:
    from astropy.io import fits

    with fits.open(io.BytesIO(content)) as hdus:
        return json.loads(hdus["PROVENANCE"].data["JSON"][0])


@pytest.mark.parametrize("format", ["fits", "csv"])
def test_cli_explorer_and_export_view_write_the_same_catalogue(demo_files, tmp_path, format):
    from dashboard import Explorer

    paths = [demo_files.classifications.resolve(), demo_files.subjects.resolve()]
    extension = ".fits" if format == "fits" else ".csv"
    output = tmp_path / "cli" / f"zoolens-selection{extension}"
    output.parent.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "zoolens", "export", str(paths[0]), str(paths[1]),
         "--workflow", str(demo.WORKFLOW_ID), "--workflow-version", demo.WORKFLOW_VERSION,
         "--fits-column", demo.FITS_COLUMN, "--images", str(demo_files.folder), "--marks", "-o", str(output)],
        cwd=ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                                       "ZOOLENS_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr

    explorer = Explorer.from_paths(paths, image_roots=[demo_files.folder], **demo.PROJECT_OPTIONS)
    explorer.export.param.update(format=format, include_marks=True)
    from_explorer = explorer.export.export()
    built = load_project(paths, image_roots=[demo_files.folder], **demo.PROJECT_OPTIONS)
    from_function = export_selection(built, Selection(project=built), format, include_marks=True)

    if format == "fits":
        from_cli = output.read_bytes()
        assert from_explorer[0] == from_function[0] == output.name
        exports = [(content, _fits_provenance(content)) for content in (from_cli, from_explorer[1], from_function[1])]
    else:
        # The CLI writes the catalogue, its marks and the provenance sidecar; a download zips the same files.
        files = sorted(output.parent.iterdir())
        assert [file.name for file in files] == ["zoolens-selection.csv", "zoolens-selection.marks.csv",
                                                 "zoolens-selection.provenance.json"]
        assert from_explorer[0] == from_function[0] == "zoolens-selection.zip"
        exports = []
        for contents in ({file.name: file.read_bytes() for file in files},
                         *(_unzipped(content) for content in (from_explorer[1], from_function[1]))):
            provenance = json.loads(contents["zoolens-selection.provenance.json"])
            exports.append((b"\0".join(contents[name] for name in sorted(contents)), provenance))
    cli, *others = [_without_time(content, provenance) for content, provenance in exports]
    assert all(other == cli for other in others)
    provenance = exports[0][1]
    assert provenance["rows"]["consensus"] > 50 and provenance["sky"]["method"] == "wcs"
    assert provenance["filters"]["workflow_id"] == demo.WORKFLOW_ID


def _unzipped(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_notebook_project_has_the_consensus_the_served_demo_has(demo_files):
    from dashboard import Explorer

    paths = [demo_files.classifications, demo_files.subjects, demo_files.workflows]
    explorer = Explorer.from_paths(paths, **demo.PROJECT_OPTIONS)
    served = load_project(paths, title="built-in demo", image_roots=[demo_files.folder], **demo.PROJECT_OPTIONS)
    assert len(explorer.project.consensus) == len(served.consensus) > 50
    assert explorer.project.consensus_source == served.consensus_source


def test_an_unknown_loading_option_is_an_error_listing_the_known_ones(demo_files):
    with pytest.raises(ValueError, match="unknown loading option 'workflow'; known options: .*workflow_id"):
        load_project([demo_files.classifications], workflow=9001)
    from dashboard import Explorer

    with pytest.raises(ValueError, match="point_box"):
        Explorer.from_paths([demo_files.classifications], pointbox=3)
    # Every option is documented where the loader declares it.
    assert all(doc for doc in loader_options().values())
    import data_loaders

    with pytest.raises(ValueError, match="the subjects loader has no option 'tasks'; its options: .*workflow_id"):
        data_loaders.read(demo_files.subjects, tasks=["T0"])


def test_point_box_and_tasks_reach_every_command(demo_files, tmp_path):
    """The loading options `serve` and `demo` now pass on: points become boxes, tasks are chosen."""
    from zoolens.cli import build_parser
    from zoolens.project_arguments import project_options

    for command in ("serve", "demo", "aggregate", "export"):
        words = [command] + (["x.csv"] if command in ("serve", "aggregate", "export") else [])
        words += ["-o", "o.csv"] if command in ("aggregate", "export") else []
        args = build_parser(command).parse_args([*words, "--point-box", "2.5*#fwhmImagePix", "--task", "T0",
                                                 "--workflow", "7", "--param", "min_votes=2"])
        # Every command picks each kind of mark's own method (consensus points for clicks) unless told one.
        assert project_options(args) == {"method": "auto", "method_params": {"min_votes": 2}, "workflow_id": 7,
                                         "tasks": ["T0"], "point_box": "2.5*#fwhmImagePix"}
    built = load_project([demo_files.classifications], tasks=["T9"], workflow_id=demo.WORKFLOW_ID)
    assert len(built.marks) == 0 and built.filters["tasks"] == ["T9"]
