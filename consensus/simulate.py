"""Synthetic drawing projects with known truth: volunteers boxing clumps on galaxy cutouts.

`simulate_project` makes a whole project in the canonical tables (`data_loaders.schema`)
together with the true boxes and each volunteer's skill, so the consensus methods can
be scored against the truth and benchmarked at the Clump Scout scale (85,000 subjects,
1.7 million classifications, 3.5 million marks), and the built-in demo has realistic
volunteer behaviour to show.

The volunteer model, per volunteer (drawn once from the distributions of a noise preset):

- ``miss_rate``: chance to overlook a clump; a clump's own ``detectability`` (faint
  clumps are missed more) multiplies the chance to see it.
- ``spurious_rate``: mean number of boxes per classification on nothing (Poisson).
- ``position_sigma``: spread of a box's centre, as a fraction of the clump's size.
- ``size_sigma``: spread of the box's width and height, in natural-log units.
- ``double_rate``: chance to box a clump they found a second time.
- ``empty_rate``: chance to submit without drawing anything at all.
- ``activity``: relative share of all classifications, heavy-tailed (Lomax), so a few
  volunteers do a large part of the work as on real projects.
- logged out (a ``not-logged-in-<hash>`` name and no user id) for a share of volunteers.

Everything is vectorised over classifications and marks; the only Python loops run
over a handful of parameters or resampling rounds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data_loaders.schema import conform


@dataclass(frozen=True)
class SkillDistribution:
    """How volunteer skill varies across a project: the means of each per-volunteer parameter.

    Each volunteer draws ``miss_rate``, ``double_rate`` and ``empty_rate`` from a Beta
    distribution with the given mean (concentration ``beta_concentration``),
    ``spurious_rate`` from a Gamma distribution of shape ``spurious_shape`` (a small
    shape gives a few volunteers who draw many boxes on nothing), and the two noise
    scales from a log-normal of spread ``sigma_spread`` around the given median.
    """

    miss_rate: float
    spurious_rate: float
    position_sigma: float
    size_sigma: float
    double_rate: float
    empty_rate: float
    beta_concentration: float = 6.0
    spurious_shape: float = 0.8
    sigma_spread: float = 0.4


#: Named volunteer populations. "realistic" is tuned so a project with the default
#: 2.2 clumps per subject gets about 2 marks per classification, the Clump Scout ratio
#: (3.5 million marks over 1.7 million classifications).
NOISE_PRESETS = {
    "clean": SkillDistribution(
        miss_rate=0.03, spurious_rate=0.02, position_sigma=0.03, size_sigma=0.03,
        double_rate=0.0, empty_rate=0.0, beta_concentration=50.0,
    ),
    "realistic": SkillDistribution(
        miss_rate=0.2, spurious_rate=0.35, position_sigma=0.12, size_sigma=0.15,
        double_rate=0.03, empty_rate=0.05,
    ),
    "noisy": SkillDistribution(
        miss_rate=0.45, spurious_rate=0.9, position_sigma=0.25, size_sigma=0.3,
        double_rate=0.08, empty_rate=0.12, spurious_shape=0.5, sigma_spread=0.6,
    ),
}


@dataclass
class SimulatedProject:
    """A synthetic project: canonical tables plus what produced them.

    Attributes
    ----------
    truth : DataFrame
        The true boxes: subject_id, truth_id, x, y, width, height (top-left, pixels),
        detectability (0-1, how easily volunteers see the clump).
    classifications : DataFrame
        Canonical classifications table (`data_loaders.schema.CLASSIFICATIONS`).
    marks : DataFrame
        Canonical marks table, plus ``truth_id`` (-1 for a box drawn on nothing) and
        ``double`` (True for the second box a volunteer drew on one clump).
    volunteers : DataFrame
        One row per volunteer: user, user_id, logged_in, the skill parameters, activity
        and the number of classifications they made.
    subjects : DataFrame
        Canonical subjects table (no image locations: a simulation has no images).
    parameters : dict
        The arguments that produced the project, for provenance.
    distractors : DataFrame or None
        `simulate_distractor_project` only: the objects that are not targets but that
        some volunteers box anyway (foreground stars): subject_id, distractor_id, x, y,
        width, height.
    """

    truth: pd.DataFrame
    classifications: pd.DataFrame
    marks: pd.DataFrame
    volunteers: pd.DataFrame
    subjects: pd.DataFrame
    parameters: dict = field(default_factory=dict)
    distractors: pd.DataFrame | None = None


def simulate_project(
    n_subjects: int,
    seed: int = 0,
    image_size: tuple[int, int] = (400, 400),
    clumps_per_subject_mean: float = 2.2,
    n_volunteers: int | None = None,
    classifications_per_subject: float = 20.0,
    noise: str | SkillDistribution = "realistic",
    clump_size_median: float | None = None,
    galaxy_radius: float | None = None,
    logged_out_fraction: float = 0.3,
    activity_shape: float = 1.2,
    fem_fraction: float = 0.3,
    workflow_id: int = 1,
    workflow_version: str = "1.1",
    first_subject_id: int = 30_000_000,
    first_classification_id: int = 200_000_000,
    start: str = "2019-03-01",
    duration_days: float = 365.0,
) -> SimulatedProject:
    """Simulate volunteers drawing boxes around clumps on ``n_subjects`` galaxy images.

    Deterministic: the same arguments always give the same tables.

    Parameters
    ----------
    n_subjects : int
        Number of subjects (images).
    seed : int
        Seed of the random generator.
    image_size : (int, int)
        Width and height of every image, in pixels.
    clumps_per_subject_mean : float
        Mean of the Poisson number of true clumps per subject (some subjects have none).
    n_volunteers : int, optional
        Number of volunteers; default one per 80 classifications (the Clump Scout
        ratio: 1.7 million classifications by 21,000 volunteers), at least 30.
    classifications_per_subject : float
        Mean of the Poisson number of classifications per subject (at least 1 each).
        A volunteer classifies a subject at most once.
    noise : {"realistic", "noisy", "clean"} or SkillDistribution
        The volunteer population (see `NOISE_PRESETS`).
    clump_size_median : float, optional
        Median side of a true clump box in pixels; default 4 % of the image's smaller
        side (16 px on a 400 px image, the median Clump Scout box).
    galaxy_radius : float, optional
        Clumps and spurious boxes lie within this distance of the image centre;
        default a quarter of the image's smaller side.
    logged_out_fraction : float
        Share of volunteers who are not logged in.
    activity_shape : float
        Shape of the Lomax distribution of volunteer activity; smaller is more
        heavy-tailed. A single volunteer's share is capped so that no volunteer
        needs to classify more than half of the subjects.
    fem_fraction : float
        Share of the classifications, the latest ones, made in the new front end
        (``classifier`` "fem"); the rest are classic ("pfe").
    workflow_id, workflow_version : int, str
        Written into every classification.
    first_subject_id, first_classification_id : int
        Ids count up from these; mark ids count up from 1.
    start : str
        Date of the first possible classification (UTC).
    duration_days : float
        Length of the project; classification times fall within it.

    Returns
    -------
    SimulatedProject
    """
    if n_subjects < 1:
        raise ValueError(f"n_subjects must be at least 1, got {n_subjects}")
    skill = NOISE_PRESETS[noise] if isinstance(noise, str) and noise in NOISE_PRESETS else noise
    if not isinstance(skill, SkillDistribution):
        raise ValueError(f"unknown noise {noise!r}; known presets: {', '.join(NOISE_PRESETS)}")
    width, height = (float(side) for side in image_size)
    if clump_size_median is None:
        clump_size_median = 0.04 * min(width, height)
    if galaxy_radius is None:
        galaxy_radius = 0.25 * min(width, height)
    if n_volunteers is None:
        n_volunteers = max(30, round(n_subjects * classifications_per_subject / 80))
    parameters = {
        "n_subjects": n_subjects, "seed": seed, "image_size": [width, height],
        "clumps_per_subject_mean": clumps_per_subject_mean, "n_volunteers": n_volunteers,
        "classifications_per_subject": classifications_per_subject,
        "noise": noise if isinstance(noise, str) else dataclasses.asdict(noise),
        "clump_size_median": clump_size_median, "galaxy_radius": galaxy_radius,
        "logged_out_fraction": logged_out_fraction, "activity_shape": activity_shape,
        "fem_fraction": fem_fraction, "workflow_id": workflow_id,
        "workflow_version": workflow_version, "start": start, "duration_days": duration_days,
    }
    rng = np.random.default_rng(seed)
    subject_ids = first_subject_id + np.arange(n_subjects, dtype=np.int64)
    centre = np.array([width / 2, height / 2])

    truth = _simulate_truth(rng, subject_ids, clumps_per_subject_mean, clump_size_median,
                            galaxy_radius, centre)
    volunteers = _simulate_volunteers(rng, n_volunteers, skill, logged_out_fraction,
                                      activity_shape, classifications_per_subject)
    classification_subject, classification_volunteer, created_seconds = _assign_classifications(
        rng, subject_ids, volunteers, classifications_per_subject, duration_days)

    # Classification ids grow with time, as on Panoptes.
    order = np.argsort(created_seconds, kind="stable")
    classification_subject = classification_subject[order]
    classification_volunteer = classification_volunteer[order]
    created_seconds = created_seconds[order]
    n_classifications = len(order)
    classification_ids = first_classification_id + np.arange(n_classifications, dtype=np.int64)

    marks = _simulate_marks(rng, truth, volunteers, classification_subject,
                            classification_volunteer, subject_ids, clump_size_median,
                            galaxy_radius, centre)

    classifier = np.where(np.arange(n_classifications) >= round((1 - fem_fraction) * n_classifications),
                          "fem", "pfe")
    classifications, marks_table, subjects = canonical_tables(
        volunteers, classification_ids, classification_subject, classification_volunteer, created_seconds, start,
        workflow_id, workflow_version, classifier, marks, "Clump", "rectangle", subject_ids, width, height)
    return SimulatedProject(truth=truth, classifications=classifications, marks=marks_table,
                            volunteers=volunteers, subjects=subjects, parameters=parameters)


def _simulate_truth(rng, subject_ids, clumps_per_subject_mean, clump_size_median,
                    galaxy_radius, centre) -> pd.DataFrame:
    """True clump boxes: Poisson per subject, inside the galaxy, rarely overlapping."""
    n_clumps = rng.poisson(clumps_per_subject_mean, size=len(subject_ids))
    subject = np.repeat(subject_ids, n_clumps)
    total = len(subject)
    side = clump_size_median * np.exp(rng.normal(0.0, 0.35, total))
    width = side * np.exp(rng.normal(0.0, 0.08, total))
    height = side * np.exp(rng.normal(0.0, 0.08, total))
    centre_x, centre_y = _points_in_disc(rng, total, galaxy_radius, centre)
    # Two true clumps boxed on top of each other are one clump to any volunteer; move
    # the later of an overlapping pair elsewhere, a few rounds until none is left.
    for _ in range(20):
        overlapping = _overlapping_later(subject, centre_x, centre_y, width, height)
        if not overlapping.any():
            break
        centre_x[overlapping], centre_y[overlapping] = _points_in_disc(
            rng, int(overlapping.sum()), galaxy_radius, centre)
    # Clump Scout's faint clumps are the ones volunteers miss; most are easy to see.
    detectability = rng.beta(6.0, 1.0, total)
    truth_id = np.arange(total, dtype=np.int64)
    return pd.DataFrame({
        "subject_id": subject.astype(np.int64),
        "truth_id": truth_id,
        "x": centre_x - width / 2,
        "y": centre_y - height / 2,
        "width": width,
        "height": height,
        "detectability": detectability,
    })


def _points_in_disc(rng, count, radius, centre):
    """Uniform random points in a disc (centre x array, centre y array)."""
    distance = radius * np.sqrt(rng.random(count))
    angle = rng.uniform(0.0, 2 * np.pi, count)
    return centre[0] + distance * np.cos(angle), centre[1] + distance * np.sin(angle)


def _overlapping_later(subject, centre_x, centre_y, width, height) -> np.ndarray:
    """Mask of boxes overlapping an earlier box of the same subject (IoU > 0.1)."""
    overlapping = np.zeros(len(subject), dtype=bool)
    if len(subject) < 2:
        return overlapping
    # Pairs within a subject: the boxes are grouped by subject, so pair each box with
    # the ones up to the largest group size before it and keep same-subject pairs.
    starts = np.flatnonzero(np.r_[True, subject[1:] != subject[:-1]])
    largest = int(np.diff(np.r_[starts, len(subject)]).max())
    for lag in range(1, largest):
        later = np.arange(lag, len(subject))
        earlier = later - lag
        same = subject[later] == subject[earlier]
        later, earlier = later[same], earlier[same]
        iou = _iou(centre_x[later], centre_y[later], width[later], height[later],
                   centre_x[earlier], centre_y[earlier], width[earlier], height[earlier])
        overlapping[later[iou > 0.1]] = True
    return overlapping


def _iou(cx1, cy1, w1, h1, cx2, cy2, w2, h2):
    overlap_x = np.clip(np.minimum(cx1 + w1 / 2, cx2 + w2 / 2) - np.maximum(cx1 - w1 / 2, cx2 - w2 / 2), 0, None)
    overlap_y = np.clip(np.minimum(cy1 + h1 / 2, cy2 + h2 / 2) - np.maximum(cy1 - h1 / 2, cy2 - h2 / 2), 0, None)
    intersection = overlap_x * overlap_y
    return intersection / (w1 * h1 + w2 * h2 - intersection)


def _beta_with_mean(rng, mean, concentration, count):
    if mean <= 0:
        return np.zeros(count)
    return rng.beta(mean * concentration, (1 - mean) * concentration, count)


def _simulate_volunteers(rng, n_volunteers, skill, logged_out_fraction, activity_shape,
                         classifications_per_subject) -> pd.DataFrame:
    """One row per volunteer: name, id, skill parameters and relative activity."""
    logged_in = rng.random(n_volunteers) >= logged_out_fraction
    # Logged-out names end in 20 hex digits, like the hashed IPs Panoptes uses.
    high = np.char.mod("%015x", rng.integers(0, 16**15, n_volunteers, dtype=np.int64))
    low = np.char.mod("%05x", rng.integers(0, 16**5, n_volunteers, dtype=np.int64))
    logged_out_names = np.char.add("not-logged-in-", np.char.add(high, low))
    logged_in_names = np.char.mod("volunteer_%06d", np.arange(1, n_volunteers + 1))
    user_ids = pd.array(np.where(logged_in, 1_000_000 + np.arange(n_volunteers) * 7, 0),
                        dtype="Int64")
    user_ids[~logged_in] = pd.NA
    activity = rng.pareto(activity_shape, n_volunteers)
    # No volunteer can classify a subject twice, so nobody may need more than half of
    # the subjects: cap the share (expected classifications per subject 0.5), then
    # renormalise, which may lift others to the cap in turn.
    share = activity / activity.sum()
    cap = max(0.5 / classifications_per_subject, 1.0 / n_volunteers)
    for _ in range(10):
        share = np.minimum(share, cap)
        share /= share.sum()
    concentration = skill.beta_concentration
    return pd.DataFrame({
        "user": pd.array(np.where(logged_in, logged_in_names, logged_out_names), dtype="string"),
        "user_id": user_ids,
        "logged_in": logged_in,
        "miss_rate": _beta_with_mean(rng, skill.miss_rate, concentration, n_volunteers),
        "spurious_rate": rng.gamma(skill.spurious_shape, skill.spurious_rate / skill.spurious_shape,
                                   n_volunteers),
        "position_sigma": skill.position_sigma * np.exp(rng.normal(0, skill.sigma_spread, n_volunteers)),
        "size_sigma": skill.size_sigma * np.exp(rng.normal(0, skill.sigma_spread, n_volunteers)),
        "double_rate": _beta_with_mean(rng, skill.double_rate, concentration, n_volunteers),
        "empty_rate": _beta_with_mean(rng, skill.empty_rate, concentration, n_volunteers),
        "activity": share,
    })


def _assign_classifications(rng, subject_ids, volunteers, classifications_per_subject,
                            duration_days):
    """Who classified which subject, and when (seconds after the project start).

    Volunteers are drawn in proportion to their activity; a volunteer drawn twice for
    one subject is redrawn (uniformly after a few rounds, which always converges when
    there are more volunteers than classifications of a subject).
    """
    n_volunteers = len(volunteers)
    counts = np.clip(rng.poisson(classifications_per_subject, len(subject_ids)), 1, n_volunteers)
    subject = np.repeat(subject_ids, counts)
    share = volunteers["activity"].to_numpy()
    cumulative = np.cumsum(share)
    # Everyone in the volunteers table classified at least once (when there are enough
    # classifications); the rest go by activity, in random order over the subjects.
    guaranteed = np.arange(min(n_volunteers, len(subject)))
    by_activity = np.searchsorted(cumulative, rng.random(len(subject) - len(guaranteed)) * cumulative[-1])
    volunteer = rng.permutation(np.minimum(np.r_[guaranteed, by_activity], n_volunteers - 1))
    subject_index = subject - subject_ids[0]
    for round_number in range(200):
        # One integer per (subject, volunteer) pair: equal neighbours after sorting
        # are a volunteer drawn twice for one subject.
        pair = subject_index * n_volunteers + volunteer
        order = np.argsort(pair)
        repeated = np.zeros(len(subject), dtype=bool)
        repeated[order[1:]] = pair[order[1:]] == pair[order[:-1]]
        n_repeated = int(repeated.sum())
        if n_repeated == 0:
            break
        if round_number < 5:
            redrawn = np.searchsorted(cumulative, rng.random(n_repeated) * cumulative[-1])
        else:
            redrawn = rng.integers(0, n_volunteers, n_repeated)
        volunteer[repeated] = np.minimum(redrawn, n_volunteers - 1)
    else:
        raise RuntimeError("could not give every subject distinct volunteers; add volunteers")

    # Each volunteer is active during one window of the project and classifies at
    # uniform times within it.
    duration = duration_days * 86400.0
    window_length = duration * rng.beta(0.7, 2.0, n_volunteers)
    window_start = rng.random(n_volunteers) * (duration - window_length)
    seconds = window_start[volunteer] + rng.random(len(subject)) * window_length[volunteer]
    return subject, volunteer, seconds



def canonical_tables(volunteers: pd.DataFrame, classification_ids, classification_subject, classification_volunteer,
                     created_seconds, start: str, workflow_id: int, workflow_version: str, classifier,
                     marks: dict, tool_label: str, kind: str, subject_ids, width, height):
    """The canonical classifications, marks and subjects of a simulated project (and each volunteer's
    ``n_classifications``), from per-classification arrays and the simulated ``marks`` (``classification``,
    ``x``, ``y``, ``width``, ``height``, ``truth_id``, ``double``)."""
    n_classifications = len(classification_ids)
    users = volunteers["user"].array  # Arrow strings: take() is much faster than object arrays
    classifications = conform(pd.DataFrame({
        "classification_id": classification_ids,
        "subject_id": classification_subject,
        "workflow_id": np.int64(workflow_id),
        "workflow_version": workflow_version,
        "user": users.take(classification_volunteer),
        "user_id": volunteers["user_id"].to_numpy()[classification_volunteer],
        "created_at": pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.round(created_seconds), unit="s"),
        "n_marks": np.bincount(marks["classification"], minlength=n_classifications).astype(np.int64),
        "gold_standard": False,
        "expert": False,
        "classifier": classifier,
    }), "classifications")
    mark_classification = marks["classification"]
    marks_table = conform(pd.DataFrame({
        "mark_id": np.arange(1, len(mark_classification) + 1, dtype=np.int64),
        "classification_id": classification_ids[mark_classification],
        "subject_id": classification_subject[mark_classification],
        "user": users.take(classification_volunteer[mark_classification]),
        "task": "T0",
        "tool": np.int64(0),
        "tool_label": tool_label,
        "frame": np.int64(0),
        "x": marks["x"],
        "y": marks["y"],
        "width": marks["width"],
        "height": marks["height"],
        "angle": 0.0,
        "kind": kind,
        "truth_id": marks["truth_id"],
        "double": marks["double"],
    }), "marks")
    volunteers["n_classifications"] = np.bincount(classification_volunteer, minlength=len(volunteers))
    subjects = conform(pd.DataFrame({
        "subject_id": subject_ids,
        "locations": [{} for _ in range(len(subject_ids))],
        "width": width,
        "height": height,
        "retired": True,
    }), "subjects")
    return classifications, marks_table, subjects

def _simulate_marks(rng, truth, volunteers, classification_subject, classification_volunteer,
                    subject_ids, clump_size_median, galaxy_radius, centre) -> dict:
    """Every box drawn: found clumps (with noise), double boxes, boxes on nothing.

    Returns columns as arrays, ``classification`` being the row index of the
    classification that drew the mark; sorted by classification.
    """
    n_classifications = len(classification_subject)
    skill = {name: volunteers[name].to_numpy()[classification_volunteer]
             for name in ("miss_rate", "spurious_rate", "position_sigma", "size_sigma",
                          "double_rate", "empty_rate")}

    # Every (classification, true clump of its subject) pair: the chances to box it.
    subject_index = classification_subject - subject_ids[0]
    clumps_per_subject = np.bincount(truth["subject_id"].to_numpy() - subject_ids[0],
                                     minlength=len(subject_ids))
    first_clump = np.r_[0, np.cumsum(clumps_per_subject)[:-1]]
    pairs_per_classification = clumps_per_subject[subject_index]
    pair_classification = np.repeat(np.arange(n_classifications), pairs_per_classification)
    pair_offset = np.arange(len(pair_classification)) - np.repeat(
        np.cumsum(pairs_per_classification) - pairs_per_classification, pairs_per_classification)
    pair_truth = first_clump[subject_index[pair_classification]] + pair_offset
    detectability = truth["detectability"].to_numpy()[pair_truth]
    seen = rng.random(len(pair_truth)) < (1 - skill["miss_rate"][pair_classification]) * detectability
    found_classification = pair_classification[seen]
    found_truth = pair_truth[seen]
    doubled = rng.random(len(found_truth)) < skill["double_rate"][found_classification]
    found_classification = np.r_[found_classification, found_classification[doubled]]
    found_truth = np.r_[found_truth, found_truth[doubled]]
    is_double = np.r_[np.zeros(int(seen.sum()), dtype=bool), np.ones(int(doubled.sum()), dtype=bool)]

    truth_width = truth["width"].to_numpy()[found_truth]
    truth_height = truth["height"].to_numpy()[found_truth]
    truth_cx = truth["x"].to_numpy()[found_truth] + truth_width / 2
    truth_cy = truth["y"].to_numpy()[found_truth] + truth_height / 2
    position_sigma = skill["position_sigma"][found_classification]
    size_sigma = skill["size_sigma"][found_classification]
    count = len(found_truth)
    found_width = truth_width * np.exp(rng.normal(0, 1, count) * size_sigma)
    found_height = truth_height * np.exp(rng.normal(0, 1, count) * size_sigma)
    found_cx = truth_cx + rng.normal(0, 1, count) * position_sigma * truth_width
    found_cy = truth_cy + rng.normal(0, 1, count) * position_sigma * truth_height

    # Boxes on nothing: anywhere in the galaxy, sized like clumps.
    n_spurious = rng.poisson(skill["spurious_rate"])
    spurious_classification = np.repeat(np.arange(n_classifications), n_spurious)
    total_spurious = len(spurious_classification)
    spurious_side = clump_size_median * np.exp(rng.normal(0, 0.45, total_spurious))
    spurious_width = spurious_side * np.exp(rng.normal(0, 0.15, total_spurious))
    spurious_height = spurious_side * np.exp(rng.normal(0, 0.15, total_spurious))
    spurious_cx, spurious_cy = _points_in_disc(rng, total_spurious, galaxy_radius * 1.2, centre)

    classification = np.r_[found_classification, spurious_classification]
    width = np.r_[found_width, spurious_width]
    height = np.r_[found_height, spurious_height]
    x = np.r_[found_cx, spurious_cx] - width / 2
    y = np.r_[found_cy, spurious_cy] - height / 2
    truth_id = np.r_[truth["truth_id"].to_numpy()[found_truth], np.full(total_spurious, -1, np.int64)]
    double = np.r_[is_double, np.zeros(total_spurious, dtype=bool)]

    # A volunteer who submits without drawing leaves an empty classification.
    empty = rng.random(n_classifications) < skill["empty_rate"]
    keep = ~empty[classification]
    # Marks in the order a volunteer would draw them within a classification:
    # classification first, then a random order, so doubles are not always last.
    selected = np.flatnonzero(keep)
    # The fraction orders marks randomly within a classification; classification
    # indices are far below 2**52, so the sum is exact.
    selected = selected[np.argsort(classification[selected] + rng.random(len(selected)))]
    return {
        "classification": classification[selected],
        "x": x[selected],
        "y": y[selected],
        "width": width[selected],
        "height": height[selected],
        "truth_id": truth_id[selected],
        "double": double[selected],
    }


def simulate_distractor_project(
    n_subjects: int,
    seed: int = 0,
    noise: str | SkillDistribution = "realistic",
    image_size: tuple[int, int] = (400, 400),
    size_range: tuple[float, float] = (0.015, 0.15),
    touching_fraction: float = 0.3,
    distractors_per_subject_mean: float = 1.5,
    distractor_boxer_fraction: float = 0.35,
    boxer_propensity: float = 0.85,
    other_propensity: float = 0.02,
    spammer_fraction: float = 0.03,
    spam_boxes_mean: float = 5.0,
    **options,
) -> SimulatedProject:
    """A project that fools vote counting: volunteers who box distractors, spammers, varied and touching clumps.

    Starts from `simulate_project` (same volunteers, classifications and noise
    model) and changes it the ways real projects differ from that ideal:

    - true clumps span a ``size_range`` of sizes (as fractions of the image's
      smaller side, log-uniform: a 10x range by default), and in a
      ``touching_fraction`` of the subjects with two or more clumps the second
      clump touches the first, edge to edge, with up to 2 px between them;
    - every subject has a Poisson number of distractors (foreground stars) sized
      like the clumps at random positions on the image, clear of the clumps;
      each volunteer boxes each distractor they see with their own
      ``distractor_propensity``: a ``distractor_boxer_fraction`` of the
      volunteers (who mistake stars for clumps) around ``boxer_propensity``,
      everyone else around ``other_propensity`` (Beta draws), so a star's box
      is supported by roughly 20-35 % of the people who saw it, the same people
      on every subject; their boxes scatter with the volunteer's own position
      and size noise, as their clump boxes do;
    - a ``spammer_fraction`` of the volunteers draw nothing real: a Poisson
      number (mean ``spam_boxes_mean``) of boxes of any size anywhere.

    Everything the base project's volunteers drew on clumps is kept, moved and
    scaled with its clump (their noise is relative to the clump's size), so the
    volunteer model is unchanged. The extra randomness comes from a generator
    of its own, so the base project is the one ``simulate_project`` gives with
    the same ``seed``.

    Parameters
    ----------
    n_subjects, seed, noise, image_size
        As for `simulate_project`; ``options`` are passed on to it too.
    size_range : (float, float)
        Smallest and largest true clump side, as fractions of the image's smaller side.
    touching_fraction : float
        Share of the subjects with at least two clumps whose second clump touches the first.
    distractors_per_subject_mean : float
        Mean of the Poisson number of distractors per subject.
    distractor_boxer_fraction : float
        Share of the volunteers who box distractors as a habit.
    boxer_propensity, other_propensity : float
        Mean chance that a habitual boxer, or anyone else, boxes a distractor they see.
    spammer_fraction : float
        Share of the volunteers who box at random.
    spam_boxes_mean : float
        Mean number of boxes per classification of a spammer.

    Returns
    -------
    SimulatedProject
        As `simulate_project`'s, plus: ``truth.touching`` (the clump was placed
        touching its subject's first clump), ``marks.distractor_id`` (the
        distractor a mark boxes, -1 for none), ``volunteers.distractor_propensity``
        and ``volunteers.spammer``, and the ``distractors`` table.
    """
    base = simulate_project(n_subjects, seed=seed, noise=noise, image_size=image_size, **options)
    rng = np.random.default_rng([seed, 18])
    image_width, image_height = (float(side) for side in image_size)
    short_side = min(image_width, image_height)
    centre = np.array([image_width / 2, image_height / 2])
    galaxy_radius = base.parameters["galaxy_radius"]
    smallest, largest = (fraction * short_side for fraction in size_range)

    def sides(count):
        return smallest * (largest / smallest) ** rng.random(count)

    # True clumps: new sizes and places; the base marks follow their clump.
    truth = base.truth.copy()
    subject = truth["subject_id"].to_numpy()
    old_width, old_height = truth["width"].to_numpy(), truth["height"].to_numpy()
    old_cx, old_cy = truth["x"].to_numpy() + old_width / 2, truth["y"].to_numpy() + old_height / 2
    scale = sides(len(truth)) / np.sqrt(old_width * old_height)
    width, height = old_width * scale, old_height * scale
    cx, cy = _points_in_disc(rng, len(truth), galaxy_radius, centre)
    starts = np.flatnonzero(np.r_[True, subject[1:] != subject[:-1]]) if len(truth) else np.array([], int)
    rank = np.arange(len(truth)) - np.repeat(starts, np.diff(np.r_[starts, len(truth)]))
    touching = (rank == 1) & (rng.random(len(truth)) < touching_fraction)
    partner = np.flatnonzero(touching) - 1
    direction = rng.integers(0, 4, len(partner))
    step_x = np.select([direction == 0, direction == 1], [1.0, -1.0], 0.0)
    step_y = np.select([direction == 2, direction == 3], [1.0, -1.0], 0.0)
    gap = rng.uniform(0.0, 2.0, len(partner))
    for _ in range(20):
        moved = np.flatnonzero(touching)
        cx[moved] = cx[partner] + step_x * ((width[partner] + width[moved]) / 2 + gap)
        cy[moved] = cy[partner] + step_y * ((height[partner] + height[moved]) / 2 + gap)
        overlapping = _overlapping_later(subject, cx, cy, width, height) & ~touching
        if not overlapping.any():
            break
        cx[overlapping], cy[overlapping] = _points_in_disc(rng, int(overlapping.sum()), galaxy_radius, centre)
    truth["x"], truth["y"], truth["width"], truth["height"] = cx - width / 2, cy - height / 2, width, height
    truth["touching"] = touching

    marks = base.marks
    on_clump = marks["truth_id"].to_numpy() >= 0
    clump = marks["truth_id"].to_numpy()[on_clump]
    mark_width, mark_height = marks["width"].to_numpy().copy(), marks["height"].to_numpy().copy()
    mark_cx = marks["x"].to_numpy() + mark_width / 2
    mark_cy = marks["y"].to_numpy() + mark_height / 2
    mark_cx[on_clump] = cx[clump] + scale[clump] * (mark_cx[on_clump] - old_cx[clump])
    mark_cy[on_clump] = cy[clump] + scale[clump] * (mark_cy[on_clump] - old_cy[clump])
    mark_width[on_clump] *= scale[clump]
    mark_height[on_clump] *= scale[clump]
    marks = marks.assign(x=mark_cx - mark_width / 2, y=mark_cy - mark_height / 2, width=mark_width,
                         height=mark_height, distractor_id=np.int64(-1))

    # Distractors: clump-sized, anywhere on the image, clear of the clumps (placed after them).
    subject_ids = base.subjects["subject_id"].to_numpy()
    n_stars = rng.poisson(distractors_per_subject_mean, n_subjects)
    star_subject = np.repeat(subject_ids, n_stars)
    star_side = sides(len(star_subject))
    star_width = star_side * np.exp(rng.normal(0.0, 0.05, len(star_subject)))
    star_height = star_side * np.exp(rng.normal(0.0, 0.05, len(star_subject)))

    def star_places(count, star_width, star_height):
        return (rng.uniform(star_width, image_width - star_width, count),
                rng.uniform(star_height, image_height - star_height, count))

    star_cx, star_cy = star_places(len(star_subject), star_width, star_height)
    both_subject = np.r_[subject, star_subject]
    order = np.argsort(both_subject, kind="stable")  # each subject's clumps before its stars
    is_star = order >= len(subject)
    star_index = order[is_star] - len(subject)
    for _ in range(50):
        both = [np.r_[a, b][order] for a, b in ((cx, star_cx), (cy, star_cy), (width, star_width), (height, star_height))]
        overlapping = np.zeros(len(star_subject), dtype=bool)
        overlapping[star_index] = _overlapping_later(both_subject[order], *both)[is_star]
        if not overlapping.any():
            break
        star_cx[overlapping], star_cy[overlapping] = star_places(
            int(overlapping.sum()), star_width[overlapping], star_height[overlapping])
    distractors = pd.DataFrame({
        "subject_id": star_subject.astype(np.int64),
        "distractor_id": np.arange(len(star_subject), dtype=np.int64),
        "x": star_cx - star_width / 2, "y": star_cy - star_height / 2,
        "width": star_width, "height": star_height,
    })

    # Who boxes distractors, who spams.
    volunteers = base.volunteers.copy()
    n_volunteers = len(volunteers)
    boxer = rng.random(n_volunteers) < distractor_boxer_fraction
    volunteers["distractor_propensity"] = np.where(
        boxer, _beta_with_mean(rng, boxer_propensity, 6.0, n_volunteers),
        _beta_with_mean(rng, other_propensity, 6.0, n_volunteers))
    volunteers["spammer"] = rng.random(n_volunteers) < spammer_fraction

    classifications = base.classifications
    classification_volunteer = pd.Index(volunteers["user"]).get_indexer(classifications["user"])
    classification_subject = classifications["subject_id"].to_numpy() - subject_ids[0]
    stars_per_subject = n_stars
    first_star = np.r_[0, np.cumsum(stars_per_subject)[:-1]]
    pairs = stars_per_subject[classification_subject]
    pair_classification = np.repeat(np.arange(len(classifications)), pairs)
    pair_star = first_star[classification_subject[pair_classification]] + (
        np.arange(len(pair_classification)) - np.repeat(np.cumsum(pairs) - pairs, pairs))
    pair_volunteer = classification_volunteer[pair_classification]
    spammer = volunteers["spammer"].to_numpy()
    boxed = (rng.random(len(pair_star)) < volunteers["distractor_propensity"].to_numpy()[pair_volunteer]) & ~spammer[pair_volunteer]
    star_classification, star = pair_classification[boxed], pair_star[boxed]
    star_volunteer = classification_volunteer[star_classification]
    count = len(star)
    size_noise = volunteers["size_sigma"].to_numpy()[star_volunteer]
    position_noise = volunteers["position_sigma"].to_numpy()[star_volunteer]
    star_mark_width = star_width[star] * np.exp(rng.normal(0, 1, count) * size_noise)
    star_mark_height = star_height[star] * np.exp(rng.normal(0, 1, count) * size_noise)
    star_mark_cx = star_cx[star] + rng.normal(0, 1, count) * position_noise * star_width[star]
    star_mark_cy = star_cy[star] + rng.normal(0, 1, count) * position_noise * star_height[star]

    spam_counts = np.where(spammer[classification_volunteer], rng.poisson(spam_boxes_mean, len(classifications)), 0)
    spam_classification = np.repeat(np.arange(len(classifications)), spam_counts)
    spam_side = short_side * 0.01 * 30.0 ** rng.random(len(spam_classification))
    spam_width = spam_side * np.exp(rng.normal(0, 0.3, len(spam_classification)))
    spam_height = spam_side * np.exp(rng.normal(0, 0.3, len(spam_classification)))
    spam_x = rng.uniform(0, 1, len(spam_classification)) * (image_width - spam_width)
    spam_y = rng.uniform(0, 1, len(spam_classification)) * (image_height - spam_height)

    def drawn_by(classification, **columns):
        return pd.DataFrame({
            "classification_id": classifications["classification_id"].to_numpy()[classification],
            "subject_id": classifications["subject_id"].to_numpy()[classification],
            "user": classifications["user"].array.take(classification),
            **columns,
        })

    added = pd.concat([
        drawn_by(star_classification, x=star_mark_cx - star_mark_width / 2, y=star_mark_cy - star_mark_height / 2,
                 width=star_mark_width, height=star_mark_height, distractor_id=star),
        drawn_by(spam_classification, x=spam_x, y=spam_y, width=spam_width, height=spam_height,
                 distractor_id=np.int64(-1)),
    ], ignore_index=True)
    added = added.assign(task="T0", tool=np.int64(0), tool_label="Clump", frame=np.int64(0), angle=0.0,
                         kind="rectangle", truth_id=np.int64(-1), double=False)
    spammer_names = volunteers["user"][spammer]
    kept = marks[~marks["user"].isin(spammer_names)].drop(columns="mark_id")
    marks = pd.concat([kept, added[kept.columns]], ignore_index=True)
    # Within a classification, the added boxes fall among the drawn ones in random order.
    marks = marks.iloc[np.lexsort((rng.random(len(marks)), marks["classification_id"].to_numpy()))]
    marks.insert(0, "mark_id", np.arange(1, len(marks) + 1, dtype=np.int64))
    marks = conform(marks.reset_index(drop=True), "marks")
    n_marks = marks.groupby("classification_id").size()
    classifications = classifications.assign(
        n_marks=n_marks.reindex(classifications["classification_id"], fill_value=0).to_numpy().astype(np.int64))
    parameters = {**base.parameters, "size_range": list(size_range), "touching_fraction": touching_fraction,
                  "distractors_per_subject_mean": distractors_per_subject_mean,
                  "distractor_boxer_fraction": distractor_boxer_fraction, "boxer_propensity": boxer_propensity,
                  "other_propensity": other_propensity, "spammer_fraction": spammer_fraction,
                  "spam_boxes_mean": spam_boxes_mean}
    return SimulatedProject(truth=truth, classifications=classifications, marks=marks, volunteers=volunteers,
                            subjects=base.subjects, parameters=parameters, distractors=distractors)
