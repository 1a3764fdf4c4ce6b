"""The built-in demo project: synthetic galaxies with clumps, and the exports a team would have.

`ensure_demo()` writes, once per demo version, into a folder of the zoolens cache (or
any folder given), in a few seconds and always byte for byte the same:

- ``images/<subject_id>.fits``: the r-band image of a synthetic clumpy galaxy with a
  celestial TAN WCS, north up;
- ``images/<subject_id>.png``: the asinh (Lupton) colour rendering volunteers see;
- ``demo-subjects.csv``: a Zooniverse subject export whose ``locations`` point at
  the PNG files (paths relative to the export) and whose metadata hold ra, dec,
  redshift, ``#fwhmImagePix`` and ``#fits_file``;
- ``demo-workflows.csv``: a Zooniverse workflow export (two versions of the drawing
  workflow, one of another workflow);
- ``demo-classifications.csv``: a Zooniverse classification export of volunteers
  boxing the clumps (`consensus.simulate`), in both front-end formats, with the dirt
  real exports carry (`DIRT`);
- ``demo-truth.csv``: the true clump boxes, to see how good a consensus is;
- ``demo-detections.csv``: a machine's detections of the clumps (`simulate_detections`),
  with the misses, false detections and calibrated scores of a real detector, to compare
  humans and machine.

Everything is made by this module's own code; no third-party data is bundled.
Image pixels run from the top-left corner, y down, as in every canonical table; the
FITS arrays are stored bottom row first (FITS convention), so pixel (x, y) of the PNG
is FITS pixel (x + 1, height - y) in 1-based FITS numbering.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from consensus.simulate import SimulatedProject, simulate_project

#: Bump whenever the generated files change, so a stale cached demo is rebuilt.
DEMO_VERSION = "2"

PROJECT_ID = 9000
WORKFLOW_ID = 9001
WORKFLOW_NAME = "Find the clumps"
WORKFLOW_VERSION = "13.10"  # a string: as a float it would read 13.1
#: The subjects column (metadata ``#fits_file``) holding each subject's FITS image, relative to the demo folder.
FITS_COLUMN = "fits_file"
#: How `project.load_project` (and ``zoolens demo``, ``Explorer.from_paths``) reads the demo.
PROJECT_OPTIONS = {"workflow_id": WORKFLOW_ID, "workflow_version": WORKFLOW_VERSION, "fits_column": FITS_COLUMN}
OLDER_WORKFLOW_VERSION = "12.4"
OTHER_WORKFLOW_ID = 9002
OTHER_WORKFLOW_NAME = "Galaxy shape"
OTHER_WORKFLOW_VERSION = "2.3"
SUBJECT_SET_ID = 90001
IMAGE_SIZE = (200, 200)
PIXEL_SCALE_ARCSEC = 0.396  # SDSS

DRAWING_TASK_LABEL = "Draw a box around each clump: a compact, bright knot within the galaxy."
QUESTION_TASK_LABEL = "Is there anything odd about this galaxy?"
QUESTION_ANSWERS = ("No", "Yes")
OTHER_TASK_LABEL = "Is the galaxy simply smooth and rounded, with no sign of a disk?"
OTHER_ANSWERS = ("Smooth", "Features or disk", "Star or artifact")

#: Volunteer names an export can hold: they must show as text and never run.
HTML_USER_NAME = "<script>alert(1)</script>"
FORMULA_USER_NAME = '=HYPERLINK("http://x","y")'

#: The dirt in the classification export, beyond the logged-out volunteers and empty
#: drawing tasks the simulation makes: rows a loader must skip or filter, counted.
DIRT = {
    "broken_json_rows": 1,  # annotations cell cut short mid-JSON
    "other_workflow_rows": 6,  # workflow OTHER_WORKFLOW_ID
    "older_version_rows": 8,  # workflow WORKFLOW_ID at OLDER_WORKFLOW_VERSION
}

EXPORT_COLUMNS = (
    "classification_id", "user_name", "user_id", "user_ip", "workflow_id", "workflow_name",
    "workflow_version", "created_at", "gold_standard", "expert", "metadata", "annotations",
    "subject_data", "subject_ids",
)
SUBJECT_EXPORT_COLUMNS = (
    "subject_id", "project_id", "workflow_id", "subject_set_id", "metadata", "locations",
    "classifications_count", "retired_at", "retirement_reason", "created_at", "updated_at",
)
WORKFLOW_EXPORT_COLUMNS = (
    "workflow_id", "display_name", "version", "active", "classifications_count", "pairwise",
    "grouped", "prioritized", "primary_language", "first_task", "tutorial_subject_id",
    "retired_set_member_subjects_count", "tasks", "retirement", "aggregation", "strings",
    "minor_version",
)

_USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Safari/537.36 Edg/123.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
)


@dataclass(frozen=True)
class DemoFiles:
    """Where the files of a generated demo are."""

    folder: Path

    @property
    def classifications(self) -> Path:
        return self.folder / "demo-classifications.csv"

    @property
    def subjects(self) -> Path:
        return self.folder / "demo-subjects.csv"

    @property
    def workflows(self) -> Path:
        return self.folder / "demo-workflows.csv"

    @property
    def truth(self) -> Path:
        return self.folder / "demo-truth.csv"

    @property
    def detections(self) -> Path:
        return self.folder / "demo-detections.csv"

    @property
    def images(self) -> Path:
        return self.folder / "images"


def default_demo_folder() -> Path:
    """The cache folder of this demo version (``$ZOOLENS_CACHE_DIR`` or ``~/.cache/zoolens``)."""
    from data_loaders.cache import cache_dir

    return cache_dir() / f"demo-{DEMO_VERSION}"


def ensure_demo(folder: str | os.PathLike | None = None) -> DemoFiles:
    """The demo's files, generating them first if ``folder`` does not hold them yet.

    Parameters
    ----------
    folder : path, optional
        Where the demo lives; default `default_demo_folder`. It is written whole into
        a temporary sibling and renamed into place, so a concurrent reader never sees
        half a demo.
    """
    folder = Path(folder) if folder is not None else default_demo_folder()
    files = DemoFiles(folder)
    if (folder / "README.txt").exists():
        return files
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-partial-"))
    try:
        write_demo(staging)
        try:
            os.replace(staging, folder)
        except OSError:
            # Another process finished first; its demo is the same, byte for byte.
            if not (folder / "README.txt").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return files


def load_demo(files: DemoFiles, **options):
    """The demo as ``zoolens demo`` serves it: `project.load_project` on its exports, with its workflow, version,
    FITS images, machine detections and true clumps unless ``options`` say otherwise (``detections``, ``image_roots``...)."""
    from project import load_project

    options = {**PROJECT_OPTIONS, "detections": files.detections, "truth": files.truth, "image_roots": [files.folder.resolve()],
               "title": "built-in demo", **options}
    return load_project([files.classifications, files.subjects, files.workflows], **options)


def demo_simulation(n_subjects: int = 60, seed: int = 2024) -> SimulatedProject:
    """The volunteers and clumps of the demo (before any dirt is added).

    Two active volunteers are renamed to `HTML_USER_NAME` and `FORMULA_USER_NAME`, so
    the dashboard must escape and neutralise names it shows and writes.
    """
    project = simulate_project(
        n_subjects, seed=seed, image_size=IMAGE_SIZE, classifications_per_subject=15,
        n_volunteers=45, noise="realistic", fem_fraction=0.35, workflow_id=WORKFLOW_ID,
        workflow_version=WORKFLOW_VERSION, start="2023-05-01", duration_days=120,
    )
    volunteers = project.volunteers
    busiest = volunteers[volunteers.logged_in].sort_values(
        ["n_classifications", "user"], ascending=[False, True]).user.iloc[1:3].tolist()
    renamed = dict(zip(busiest, (HTML_USER_NAME, FORMULA_USER_NAME)))
    for table in (project.volunteers, project.classifications, project.marks):
        table["user"] = table["user"].replace(renamed)
    # Other workflows' classifications interleave with this one's on Panoptes: leave
    # gaps in the ids, which the dirt rows of another workflow fill.
    first_id = project.classifications.classification_id.min()
    for table in (project.classifications, project.marks):
        table["classification_id"] = first_id + 4 * (table["classification_id"] - first_id)
    return project


def write_demo(folder: str | os.PathLike, n_subjects: int = 60, seed: int = 2024) -> DemoFiles:
    """Generate every demo file into ``folder`` (created if needed).

    Parameters
    ----------
    folder : path
        Destination folder.
    n_subjects : int
        Number of galaxies.
    seed : int
        Seed of every random draw; the same seed gives the same bytes.
    """
    files = DemoFiles(Path(folder))
    files.images.mkdir(parents=True, exist_ok=True)
    project = demo_simulation(n_subjects, seed)
    rng = np.random.default_rng(seed + 1)
    galaxies = _galaxy_catalogue(rng, project.subjects.subject_id.to_numpy())
    for galaxy in galaxies.itertuples(index=False):
        clumps = project.truth[project.truth.subject_id == galaxy.subject_id]
        bands = render_galaxy(rng, galaxy, clumps)
        _write_fits(files.images / f"{galaxy.subject_id}.fits", bands, galaxy)
        _write_png(files.images / f"{galaxy.subject_id}.png", bands)
    subject_metadata = _subject_metadata(galaxies)
    _write_csv(subject_export_table(project, subject_metadata, galaxies), files.subjects)
    _write_csv(workflow_export_table(), files.workflows)
    export = _with_dirt(rng, project, classification_export_table(
        rng, project.classifications, project.marks, subject_metadata), subject_metadata)
    _write_csv(export, files.classifications)
    project.truth.to_csv(files.truth, index=False, lineterminator="\n")
    # Its own generator, so the detections do not shift any draw of the files above.
    simulate_detections(project.truth, project.subjects.subject_id, np.random.default_rng(seed + 2)).to_csv(
        files.detections, index=False, lineterminator="\n", float_format="%.4f")
    # Written last: its presence says the demo is complete.
    (files.folder / "README.txt").write_text(_readme(project, n_subjects, seed))
    return files


# -- machine detections --------------------------------------------------------------------

#: What the simulated detector does: it finds a clump with probability detectability **
#: ``DETECTOR["miss_power"]`` (faint clumps are missed), places its box with a scatter of
#: ``position_scatter`` box sides, adds a Poisson number of false detections per subject
#: (``false_per_subject``) and, for some found clumps, a second, shifted box (``duplicate_rate``,
#: shifted by ``duplicate_shift`` sides), as region-proposal detectors do.
DETECTOR = {"miss_power": 2.0, "position_scatter": 0.06, "size_scatter": 0.08, "false_per_subject": 0.6,
            "duplicate_rate": 0.1, "duplicate_shift": 0.6, "false_radius": 55.0}
#: Mean of the detector's hidden confidence for real (true) and spurious (false) boxes; unit spread.
CONFIDENCE_MEANS = (1.0, -1.0)


def simulate_detections(truth: pd.DataFrame, subject_ids, rng: np.random.Generator,
                        image_size: tuple[int, int] = IMAGE_SIZE) -> pd.DataFrame:
    """A machine's detections of the true clumps: misses, false and duplicate boxes, calibrated scores.

    Each box gets a hidden confidence drawn from a unit normal around
    ``CONFIDENCE_MEANS[0]`` when it is a real clump's first box and around
    ``CONFIDENCE_MEANS[1]`` otherwise; its score is then the probability, by Bayes'
    rule over those two normals and the numbers of real and spurious boxes, that a
    box of that confidence is real. So the scores are calibrated: of the boxes
    scoring about 0.8, about 80 % are real clumps, as for a well-calibrated detector.

    Parameters
    ----------
    truth : pandas.DataFrame
        True boxes (``subject_id``, ``x``, ``y``, ``width``, ``height``, ``detectability``).
    subject_ids : array-like
        Every subject the detector ran on, those without clumps too (they get false detections).
    rng : numpy.random.Generator
        The only source of randomness: the same generator state gives the same detections.
    image_size : (int, int)
        Width and height of the subjects' images; false detections fall in the galaxy
        around the centre.

    Returns
    -------
    pandas.DataFrame
        ``subject_id``, ``detection_id``, ``x``, ``y``, ``width``, ``height``, ``score``
        and ``label`` ("clump"), by subject and decreasing score; a detections file as
        `data_loaders.detections` reads it.
    """
    found = truth[rng.random(len(truth)) < truth["detectability"].to_numpy() ** DETECTOR["miss_power"]]
    size = found[["width", "height"]].to_numpy(float)
    side = np.sqrt(size.prod(axis=1))[:, None]
    centre = found[["x", "y"]].to_numpy(float) + size / 2
    real_centre = centre + rng.normal(0.0, DETECTOR["position_scatter"], centre.shape) * side
    real_size = size * np.exp(rng.normal(0.0, DETECTOR["size_scatter"], size.shape))

    doubled = rng.random(len(found)) < DETECTOR["duplicate_rate"]
    direction = rng.uniform(0.0, 2 * np.pi, doubled.sum())
    duplicate_centre = centre[doubled] + DETECTOR["duplicate_shift"] * side[doubled] * np.column_stack(
        [np.cos(direction), np.sin(direction)])
    duplicate_size = size[doubled] * np.exp(rng.normal(0.0, DETECTOR["size_scatter"], (doubled.sum(), 2)))

    subjects = np.unique(np.asarray(subject_ids, dtype=np.int64))
    n_false = rng.poisson(DETECTOR["false_per_subject"], len(subjects))
    radius = DETECTOR["false_radius"] * np.sqrt(rng.random(n_false.sum()))
    angle = rng.uniform(0.0, 2 * np.pi, n_false.sum())
    false_centre = np.array(image_size, float) / 2 + radius[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    # Spurious boxes are clump-sized: sizes drawn from the true ones.
    false_size = truth[["width", "height"]].to_numpy(float)[rng.integers(0, len(truth), n_false.sum())]

    real = np.r_[np.ones(len(found), bool), np.zeros(doubled.sum() + n_false.sum(), bool)]
    centres = np.concatenate([real_centre, duplicate_centre, false_centre])
    sizes = np.concatenate([real_size, duplicate_size, false_size])
    confidence = np.where(real, CONFIDENCE_MEANS[0], CONFIDENCE_MEANS[1]) + rng.normal(0.0, 1.0, len(real))
    n_real, n_spurious = int(real.sum()), int((~real).sum())
    (real_mean, spurious_mean) = CONFIDENCE_MEANS
    log_odds = (np.log(max(n_real, 1) / max(n_spurious, 1)) + (real_mean - spurious_mean) * confidence
                - (real_mean**2 - spurious_mean**2) / 2)
    detections = pd.DataFrame({
        "subject_id": np.concatenate([found["subject_id"].to_numpy(), found["subject_id"].to_numpy()[doubled],
                                      np.repeat(subjects, n_false)]).astype(np.int64),
        "x": centres[:, 0] - sizes[:, 0] / 2,
        "y": centres[:, 1] - sizes[:, 1] / 2,
        "width": sizes[:, 0],
        "height": sizes[:, 1],
        "score": 1.0 / (1.0 + np.exp(-log_odds)),
        "label": "clump",
    }).sort_values(["subject_id", "score"], ascending=[True, False], kind="stable")
    detections.insert(1, "detection_id", np.arange(len(detections), dtype=np.int64))
    return detections.reset_index(drop=True)


# -- images --------------------------------------------------------------------------------


def _galaxy_catalogue(rng, subject_ids) -> pd.DataFrame:
    """Sky position, redshift, shape and seeing of each demo galaxy."""
    count = len(subject_ids)
    return pd.DataFrame({
        "subject_id": subject_ids,
        # Within the SDSS northern footprint, away from the RA wrap.
        # Rounded as the metadata states them, so the WCS centre is exactly (ra, dec).
        "ra": rng.uniform(130.0, 230.0, count).round(6),
        "dec": np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(5)), np.sin(np.radians(55)), count))).round(6),
        "redshift": rng.uniform(0.02, 0.12, count).round(4),
        "axis_ratio": rng.uniform(0.6, 1.0, count),
        "position_angle": rng.uniform(0.0, np.pi, count),
        "scale_length": rng.uniform(15.0, 21.0, count),
        "arm_strength": rng.uniform(0.0, 0.8, count),
        "arm_phase": rng.uniform(0.0, 2 * np.pi, count),
        "bulge_fraction": rng.uniform(0.1, 0.6, count),
        "fwhm": 3.2 * rng.uniform(0.85, 1.15, count),
    })


def render_galaxy(rng, galaxy, clumps: pd.DataFrame) -> dict[str, np.ndarray]:
    """g, r, i images (rows top to bottom) of a disc galaxy, its bulge, clumps and sky noise.

    Clumps are blue Gaussian knots centred on their true boxes, the box side being
    2.5 FWHM as in Clump Scout; a clump's ``detectability`` sets its brightness.
    """
    width, height = IMAGE_SIZE
    y, x = np.mgrid[0:height, 0:width] + 0.5  # pixel centres
    dx, dy = x - width / 2, y - height / 2
    cos, sin = np.cos(galaxy.position_angle), np.sin(galaxy.position_angle)
    radius = np.hypot(dx * cos + dy * sin, (-dx * sin + dy * cos) / galaxy.axis_ratio)
    # Two logarithmic spiral arms (pitch angle 20 degrees) modulate the disc.
    azimuth = np.arctan2(-dx * sin + dy * cos, dx * cos + dy * sin)
    arms = np.cos(2 * (azimuth - np.log(radius + 1.0) / np.tan(np.radians(20))) + galaxy.arm_phase)
    disc = np.exp(-radius / galaxy.scale_length) * (1 + galaxy.arm_strength * arms)
    bulge = galaxy.bulge_fraction * 4.0 * np.exp(-((radius / (0.12 * galaxy.scale_length)) ** 0.7))

    knots = np.zeros_like(disc)
    if len(clumps):
        centre_x = (clumps.x + clumps.width / 2).to_numpy()[:, None, None]
        centre_y = (clumps.y + clumps.height / 2).to_numpy()[:, None, None]
        sigma = (np.sqrt(clumps.width * clumps.height) / 2.5 / 2.355).to_numpy()[:, None, None]
        amplitude = (0.2 + 0.9 * clumps.detectability.to_numpy())[:, None, None]
        knots = (amplitude * np.exp(-((x - centre_x) ** 2 + (y - centre_y) ** 2) / (2 * sigma**2))).sum(axis=0)

    # A few field stars: bright, compact, white, and an easy place for a spurious box.
    n_stars = rng.integers(0, 4)
    stars = np.zeros_like(disc)
    for star_x, star_y, brightness in zip(rng.uniform(0, width, n_stars), rng.uniform(0, height, n_stars),
                                          rng.uniform(0.3, 1.5, n_stars)):
        stars += brightness * np.exp(-((x - star_x) ** 2 + (y - star_y) ** 2) / (2 * (galaxy.fwhm / 2.355) ** 2))

    colours = {"g": (0.75, 0.3, 1.7), "r": (0.9, 0.65, 1.0), "i": (1.0, 1.0, 0.6)}
    bands = {}
    for band, (disc_colour, bulge_colour, knot_colour) in colours.items():
        light = disc_colour * disc + bulge_colour * bulge + knot_colour * knots + 0.9 * stars
        bands[band] = (10.0 * (light + rng.normal(0.0, 0.012, light.shape))).astype(np.float32)
    return bands


def _celestial_wcs(galaxy):
    from astropy.wcs import WCS

    width, height = IMAGE_SIZE
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [galaxy.ra, galaxy.dec]
    wcs.wcs.crpix = [width / 2 + 0.5, height / 2 + 0.5]
    scale = PIXEL_SCALE_ARCSEC / 3600.0
    wcs.wcs.cd = [[-scale, 0.0], [0.0, scale]]  # north up, east left
    wcs.wcs.radesys = "ICRS"
    return wcs


def _write_fits(path: Path, bands: dict[str, np.ndarray], galaxy) -> None:
    """The r-band image with its WCS (g and i would triple the demo's size for little use)."""
    from astropy.io import fits

    header = _celestial_wcs(galaxy).to_header()
    header["BUNIT"] = ("nanomaggy", "synthetic flux")
    header["FILTER"] = "r"
    header["OBJECT"] = (f"zoolens demo {galaxy.subject_id}", "synthetic galaxy")
    header["REDSHIFT"] = round(float(galaxy.redshift), 5)
    header["COMMENT"] = "Synthetic image generated by zoolens.demo; not an observation."
    fits.PrimaryHDU(bands["r"][::-1], header=header).writeto(path, overwrite=True)


def _write_png(path: Path, bands: dict[str, np.ndarray]) -> None:
    from astropy.visualization import make_lupton_rgb
    from PIL import Image

    rgb = make_lupton_rgb(bands["i"], bands["r"], bands["g"], minimum=0.0, stretch=1.5, Q=8)
    Image.fromarray(rgb).save(path, format="PNG")


# -- exports -------------------------------------------------------------------------------


def _subject_metadata(galaxies: pd.DataFrame) -> pd.Series:
    """Subject metadata as a manifest upload gives it: every value a string."""
    records = [
        {
            "Filename": f"{galaxy.subject_id}.png",
            "ra": f"{galaxy.ra:.6f}",
            "dec": f"{galaxy.dec:.6f}",
            "redshift": f"{galaxy.redshift:.4f}",
            "#fwhmImagePix": f"{galaxy.fwhm:.3f}",
            "#fits_file": f"images/{galaxy.subject_id}.fits",
        }
        for galaxy in galaxies.itertuples(index=False)
    ]
    return pd.Series(records, index=galaxies.subject_id.to_numpy())


def _compact_json(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _utc_text(times: pd.Series) -> pd.Series:
    return times.dt.strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso_millis(times: pd.Series) -> pd.Series:
    return times.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str.slice(0, 23) + "Z"


def subject_export_table(project: SimulatedProject, subject_metadata: pd.Series,
                         galaxies: pd.DataFrame) -> pd.DataFrame:
    """A Zooniverse subject export of the demo, one row per subject and workflow.

    The first five subjects were also linked to the other workflow, so they appear
    twice, as subjects shared between workflows do in real exports.
    """
    subjects = project.subjects
    counts = project.classifications.groupby("subject_id").size().reindex(subjects.subject_id, fill_value=0)
    last_classified = project.classifications.groupby("subject_id").created_at.max().reindex(subjects.subject_id)
    uploaded = pd.Timestamp("2023-04-20 09:30:00", tz="UTC") + pd.to_timedelta(
        np.arange(len(subjects)) * 7, unit="s")
    table = pd.DataFrame({
        "subject_id": subjects.subject_id.astype(str).to_numpy(),
        "project_id": str(PROJECT_ID),
        "workflow_id": str(WORKFLOW_ID),
        "subject_set_id": str(SUBJECT_SET_ID),
        "metadata": [_compact_json(record) for record in subject_metadata.loc[subjects.subject_id]],
        "locations": [_compact_json({"0": f"images/{subject_id}.png"}) for subject_id in subjects.subject_id],
        "classifications_count": counts.astype(str).to_numpy(),
        "retired_at": _utc_text(last_classified.reset_index(drop=True)).to_numpy(),
        "retirement_reason": "classification_count",
        "created_at": _utc_text(pd.Series(uploaded)).to_numpy(),
        "updated_at": _utc_text(last_classified.reset_index(drop=True)).to_numpy(),
    })
    shared = table.head(5).assign(workflow_id=str(OTHER_WORKFLOW_ID), classifications_count="1",
                                  retired_at="", retirement_reason="")
    return pd.concat([table, shared], ignore_index=True)[list(SUBJECT_EXPORT_COLUMNS)]


def workflow_export_table() -> pd.DataFrame:
    """A Zooniverse workflow export: the drawing workflow at two versions, and the other workflow."""
    def drawing_tasks(tool_label):
        tasks = {
            "T0": {"help": "T0.help", "next": "T1", "type": "drawing", "instruction": "T0.instruction",
                   "tools": [{"type": "rectangle", "color": "#00ffff", "label": "T0.tools.0.label",
                              "details": [], "max": "20"}]},
            "T1": {"help": "T1.help", "type": "single", "question": "T1.question", "required": False,
                   "answers": [{"label": f"T1.answers.{index}.label"} for index in range(2)]},
        }
        strings = {"T0.help": "Clumps are compact knots of young stars, bluer than the rest of the disc.",
                   "T0.instruction": DRAWING_TASK_LABEL, "T0.tools.0.label": tool_label,
                   "T1.help": "", "T1.question": QUESTION_TASK_LABEL,
                   **{f"T1.answers.{index}.label": answer for index, answer in enumerate(QUESTION_ANSWERS)}}
        return tasks, strings

    other_tasks = {"T0": {"help": "T0.help", "type": "single", "question": "T0.question", "required": True,
                          "answers": [{"label": f"T0.answers.{index}.label"} for index in range(3)]}}
    other_strings = {"T0.help": "", "T0.question": OTHER_TASK_LABEL,
                     **{f"T0.answers.{index}.label": answer for index, answer in enumerate(OTHER_ANSWERS)}}
    rows = []
    for workflow_id, name, version, (tasks, strings) in (
        (WORKFLOW_ID, WORKFLOW_NAME, OLDER_WORKFLOW_VERSION, drawing_tasks("Clump (bright knot)")),
        (WORKFLOW_ID, WORKFLOW_NAME, WORKFLOW_VERSION, drawing_tasks("Clump")),
        (OTHER_WORKFLOW_ID, OTHER_WORKFLOW_NAME, OTHER_WORKFLOW_VERSION, (other_tasks, other_strings)),
    ):
        major, minor = version.split(".")
        rows.append({
            "workflow_id": str(workflow_id), "display_name": name, "version": major, "active": "true",
            "classifications_count": "0", "pairwise": "false", "grouped": "false", "prioritized": "false",
            "primary_language": "en", "first_task": "T0", "tutorial_subject_id": "",
            "retired_set_member_subjects_count": "0", "tasks": _compact_json(tasks),
            "retirement": _compact_json({"options": {"count": 15}, "criteria": "classification_count"}),
            "aggregation": "{}", "strings": _compact_json(strings), "minor_version": minor,
        })
    return pd.DataFrame(rows, columns=list(WORKFLOW_EXPORT_COLUMNS))


def _number_text(values) -> pd.Series:
    """Shortest round-tripping text of each float, as JSON writes it."""
    return pd.Series(np.asarray(values, dtype=np.float64)).astype(str)


def classification_export_table(rng, classifications: pd.DataFrame, marks: pd.DataFrame,
                                subject_metadata: pd.Series) -> pd.DataFrame:
    """Canonical classifications and marks written back as Zooniverse export rows.

    Classic front-end rows (``classifier`` "pfe") carry rectangles as top-left
    ``x, y``; new front-end rows ("fem") carry ``x_center, y_center`` with
    ``toolIndex``/``toolType`` and ``metadata.classifier_version`` "2.0". A
    classification without marks gets ``"value":[]``. Built with vectorised string
    operations, so it also serves to write large synthetic exports.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the incidental values (sessions, answers to the question task, time spent).
    classifications, marks : DataFrame
        Canonical tables (`data_loaders.schema`).
    subject_metadata : Series
        Subject id -> metadata dict, copied into ``subject_data``.
    """
    classifications = classifications.reset_index(drop=True)
    count = len(classifications)
    fem_rows = (classifications.classifier == "fem").to_numpy()

    order = np.argsort(marks.classification_id.to_numpy(), kind="stable")
    marks = marks.iloc[order].reset_index(drop=True)
    mark_is_fem = marks.classification_id.isin(classifications.classification_id[fem_rows]).to_numpy()
    tool = marks.tool.astype(str)
    frame = marks.frame.astype(str)
    width, height = _number_text(marks.width), _number_text(marks.height)
    label = marks.tool_label.map(_compact_json, na_action="ignore").fillna("null").astype(str)
    classic_json = ('{"x":' + _number_text(marks.x) + ',"y":' + _number_text(marks.y) + ',"tool":' + tool
                    + ',"frame":' + frame + ',"width":' + width + ',"height":' + height
                    + ',"details":[],"tool_label":' + label + "}")
    fem_json = ('{"frame":' + frame + ',"x_center":' + _number_text(marks.x + marks.width / 2)
                + ',"y_center":' + _number_text(marks.y + marks.height / 2) + ',"width":' + width
                + ',"height":' + height + ',"details":[],"toolType":"rectangle","toolIndex":' + tool
                + ',"tool_label":null}')
    mark_json = pd.Series(np.where(mark_is_fem, fem_json, classic_json), index=marks.index)
    joined = mark_json.groupby(marks.classification_id.to_numpy()).agg(",".join)
    values = joined.reindex(classifications.classification_id).fillna("").to_numpy()

    drawing = '{"task":"T0","task_label":' + _compact_json(DRAWING_TASK_LABEL) + ',"value":[' + pd.Series(values) + "]}"
    # The question task is optional: a volunteer who skips it leaves no annotation.
    answered = rng.random(count) < 0.85
    answer = np.where(rng.random(count) < 0.1, 1, 0)
    question_value = np.where(fem_rows, answer.astype(str), np.array([_compact_json(a) for a in QUESTION_ANSWERS])[answer])
    question = np.where(answered, ',{"task":"T1","task_label":' + _compact_json(QUESTION_TASK_LABEL)
                        + ',"value":' + pd.Series(question_value) + "}", "")
    annotations = "[" + drawing + question + "]"

    created = classifications.created_at
    started = created - pd.to_timedelta(rng.gamma(2.0, 25.0, count) + 2.0, unit="s")
    selected = started - pd.to_timedelta(rng.uniform(0.05, 0.4, count), unit="s")
    sessions = _hex_strings(rng, count, 64)
    viewport_width = rng.choice(np.array([1280, 1440, 1920, 390]), count)
    viewport_height = np.where(viewport_width == 390, 844, (viewport_width * 0.56).astype(int))
    client_size = np.minimum(viewport_width * 0.45, 700.0).round(2).astype(str)
    agents = np.array([_compact_json(agent) for agent in _USER_AGENTS])[rng.integers(0, len(_USER_AGENTS), count)]
    natural_width, natural_height = IMAGE_SIZE
    dimensions = ('[{"clientWidth":' + client_size + ',"clientHeight":' + client_size
                  + f',"naturalWidth":{natural_width},"naturalHeight":{natural_height}' + "}]")
    selection_state = ('{"retired":false,"selected_at":"' + _iso_millis(selected) + '","already_seen":false,'
                       '"selection_state":"normal","finished_workflow":false,"user_has_finished_workflow":false}')
    common_start = ('{"source":"api","session":"' + sessions + '",')
    viewport = ('"viewport":{"width":' + viewport_width.astype(str) + ',"height":' + viewport_height.astype(str)
                + '},"started_at":"' + _iso_millis(started) + '","user_agent":' + agents
                + ',"utc_offset":"0","finished_at":"' + _iso_millis(created) + '","live_project":true,')
    classic_metadata = (common_start + viewport + '"interventions":{"opt_in":true,"messageShown":false},'
                        '"user_language":"en","user_group_ids":[],"subject_dimensions":' + dimensions
                        + ',"subject_selection_state":' + selection_state + ',"workflow_translation_id":"90011"}')
    fem_metadata = (common_start + '"feedback":{},"revision":"4f1d2c0e9a7b",' + viewport
                    + '"user_language":"en","user_group_ids":[],"subject_flagged":false,'
                    '"classifier_version":"2.0","subject_dimensions":' + dimensions
                    + ',"subject_selection_state":' + selection_state + "}")
    metadata = np.where(fem_rows, fem_metadata, classic_metadata)

    subject_ids = classifications.subject_id.to_numpy()
    subject_data_by_id = {
        subject_id: _compact_json({str(subject_id): {"retired": None, **record}})
        for subject_id, record in subject_metadata.items()
    }
    user_names = classifications.user.astype(str)
    return pd.DataFrame({
        "classification_id": classifications.classification_id.astype(str).to_numpy(),
        "user_name": user_names.to_numpy(),
        "user_id": classifications.user_id.astype("string").fillna("").to_numpy(),
        "user_ip": _user_ip(user_names).to_numpy(),
        "workflow_id": classifications.workflow_id.astype(str).to_numpy(),
        "workflow_name": WORKFLOW_NAME,
        "workflow_version": classifications.workflow_version.astype(str).to_numpy(),
        "created_at": _utc_text(created).to_numpy(),
        "gold_standard": "",
        "expert": "",
        "metadata": np.asarray(metadata, dtype=object),
        "annotations": np.asarray(annotations, dtype=object),
        "subject_data": pd.Series(subject_ids).map(subject_data_by_id).to_numpy(),
        "subject_ids": subject_ids.astype(str),
    }, columns=list(EXPORT_COLUMNS))


def _hex_strings(rng, count: int, digits: int) -> pd.Series:
    """``count`` random lowercase hex strings of ``digits`` digits."""
    nibbles = rng.integers(0, 16, (count, digits), dtype=np.uint8)
    characters = np.frombuffer(b"0123456789abcdef", dtype="S1")[nibbles]
    return pd.Series(characters.view(f"S{digits}").ravel().astype(str))


def _user_ip(user_names: pd.Series) -> pd.Series:
    """The hashed IP of an export: a logged-out name's own hash, else one derived from the name."""
    unique = pd.unique(user_names)
    hashed = {
        name: name.removeprefix("not-logged-in-") if name.startswith("not-logged-in-")
        else hashlib.sha256(name.encode()).hexdigest()[:20]
        for name in unique
    }
    return user_names.map(hashed)


def _with_dirt(rng, project: SimulatedProject, export: pd.DataFrame, subject_metadata: pd.Series) -> pd.DataFrame:
    """Add the rows of `DIRT` to a clean export, sorted by classification id as Panoptes does."""
    classifications = project.classifications
    first_id = int(classifications.classification_id.min())
    first_time = classifications.created_at.min()

    # The same workflow at an older version: a few volunteers' classifications made
    # before the current version went live, with their marks.
    sample_rows = rng.choice(len(classifications), DIRT["older_version_rows"], replace=False)
    older = classifications.iloc[np.sort(sample_rows)].reset_index(drop=True)
    older_ids = first_id - 1000 + np.arange(len(older))
    id_map = dict(zip(older.classification_id, older_ids))
    older_marks = project.marks[project.marks.classification_id.isin(id_map)]
    older_marks = older_marks.assign(classification_id=older_marks.classification_id.map(id_map))
    before = pd.to_timedelta(np.sort(rng.uniform(3600, 10 * 86400, len(older)))[::-1], unit="s")
    older = older.assign(classification_id=older_ids, workflow_version=OLDER_WORKFLOW_VERSION,
                         created_at=first_time - before)
    older = classification_export_table(rng, older, older_marks, subject_metadata)

    # Another workflow of the project, on the same subjects.
    other = export.sample(DIRT["other_workflow_rows"], random_state=np.random.RandomState(rng.integers(2**31)))
    answers = rng.integers(0, len(OTHER_ANSWERS), len(other))
    other = other.assign(
        classification_id=(other.classification_id.astype(np.int64) + 1).astype(str),
        workflow_id=str(OTHER_WORKFLOW_ID),
        workflow_name=OTHER_WORKFLOW_NAME,
        workflow_version=OTHER_WORKFLOW_VERSION,
        annotations=['[{"task":"T0","task_label":' + _compact_json(OTHER_TASK_LABEL) + ',"value":'
                     + _compact_json(OTHER_ANSWERS[a]) + "}]" for a in answers],
    )

    # An annotations cell cut short mid-JSON, as a truncated or hand-edited export has.
    broken = export[export.annotations.str.contains('"x":', regex=False)].head(1)
    broken = broken.assign(
        classification_id=(broken.classification_id.astype(np.int64) + 2).astype(str),
        annotations=broken.annotations.str.slice(0, 60),
    )
    dirty = pd.concat([export, older, other, broken], ignore_index=True)
    ids = dirty.classification_id.astype(np.int64)
    if ids.duplicated().any():
        raise RuntimeError("demo dirt rows collided with a classification id")
    return dirty.iloc[np.argsort(ids.to_numpy(), kind="stable")].reset_index(drop=True)


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    # This writes an export as Panoptes writes it, cells verbatim: the formula-leading
    # volunteer name is the untrusted input the demo exists to carry. zoolens' own
    # CSV outputs neutralise such cells.
    table.to_csv(path, index=False, lineterminator="\n")


def _readme(project: SimulatedProject, n_subjects: int, seed: int) -> str:
    n_marks = len(project.marks)
    return f"""zoolens built-in demo (version {DEMO_VERSION}), generated by zoolens.demo with seed {seed}.

Synthetic data, made by zoolens' own code (BSD-3-Clause); no observation or volunteer is real.
{n_subjects} galaxies of {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} pixels, {len(project.truth)} true clumps,
{len(project.classifications)} classifications with {n_marks} boxes by {len(project.volunteers)} simulated volunteers
(workflow {WORKFLOW_ID} version {WORKFLOW_VERSION}), plus dirt rows a loader must skip or filter:
{', '.join(f'{count} {name.replace("_", " ")}' for name, count in DIRT.items())}.

demo-classifications.csv  Zooniverse classification export, classic and new front-end rows
demo-subjects.csv         Zooniverse subject export; locations are paths relative to this folder
demo-workflows.csv        Zooniverse workflow export
demo-truth.csv            true clump boxes: top-left x, y, width, height in image pixels
demo-detections.csv       a simulated machine's clump detections with calibrated scores
images/<id>.png           what volunteers see (asinh colour stretch of i, r, g)
images/<id>.fits          r-band image with a TAN WCS; rows stored bottom first (FITS order)
"""
