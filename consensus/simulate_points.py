"""Synthetic point-marking projects with known truth: volunteers clicking penguins in colony photos.

`simulate_point_project` makes a whole project in the canonical tables, with the
true objects and each volunteer's skill, so the ``point`` method can be scored
against the truth and benchmarked (``bench/bench_points.py``). It follows Penguin
Watch: 1000 x 750 frames, tens of animals per frame gathered in a few colonies
(so neighbours stand close, which is what chains single-linkage clustering),
about a dozen volunteers per frame.

The volunteers are those of `consensus.simulate` (the same skill presets and
heavy-tailed activity); for clicks their parameters mean:

- ``miss_rate``: chance to overlook an animal (times the animal's ``detectability``);
- ``spurious_rate``: mean clicks per classification on nothing (rocks, shadows),
  placed in and around the colonies, where volunteers look;
- ``position_sigma``: scatter of a click around the animal, as a fraction of
  ``object_size`` pixels in x and in y;
- ``double_rate``: chance to click an animal they found a second time;
- ``empty_rate``: chance to submit without clicking anything.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .distance import point_pairs
from .simulate import (NOISE_PRESETS, SimulatedProject, SkillDistribution, _assign_classifications, _simulate_volunteers,
                       canonical_tables)


def simulate_point_project(
    n_subjects: int,
    seed: int = 0,
    image_size: tuple[int, int] = (1000, 750),
    objects_per_subject_mean: float = 25.0,
    colonies_per_subject_max: int = 3,
    colony_radius: float = 90.0,
    min_separation: float = 12.0,
    object_size: float = 25.0,
    n_volunteers: int | None = None,
    classifications_per_subject: float = 12.0,
    noise: str | SkillDistribution = "realistic",
    logged_out_fraction: float = 0.3,
    activity_shape: float = 1.2,
    first_subject_id: int = 20_000_000,
    first_classification_id: int = 100_000_000,
    start: str = "2018-06-01",
    duration_days: float = 180.0,
) -> SimulatedProject:
    """Simulate volunteers clicking animals on ``n_subjects`` frames. Deterministic for given arguments.

    Parameters
    ----------
    n_subjects : int
        Number of subjects (frames).
    seed : int
        Seed of the random generator.
    image_size : (int, int)
        Width and height of every frame, pixels.
    objects_per_subject_mean : float
        Mean of the Poisson number of animals per frame.
    colonies_per_subject_max : int
        Each frame has 1 to this many colonies (uniformly); each animal belongs to one.
    colony_radius : float
        Standard deviation in pixels of an animal's position around its colony's centre.
    min_separation : float
        No two animals of a frame stand closer than this, in pixels.
    object_size : float
        Size of an animal in pixels: the unit of a volunteer's ``position_sigma``.
    n_volunteers : int, optional
        Number of volunteers; default one per 80 classifications, at least 30.
    classifications_per_subject : float
        Mean of the Poisson number of classifications per frame (at least 1 each).
    noise : {"realistic", "noisy", "clean"} or SkillDistribution
        The volunteer population (`consensus.simulate.NOISE_PRESETS`).
    logged_out_fraction, activity_shape : float
        As in `consensus.simulate.simulate_project`.
    first_subject_id, first_classification_id : int
        Ids count up from these; mark ids count up from 1.
    start : str
        Date of the first possible classification (UTC).
    duration_days : float
        Length of the project.

    Returns
    -------
    SimulatedProject
        ``truth`` has one row per animal: subject_id, truth_id, x, y (the animal's
        position), width = height = 0, detectability. ``marks`` are points (kind
        "point", width and height missing, as the export loader gives clicks), plus
        ``truth_id`` (-1 for a click on nothing) and ``double``.
    """
    if n_subjects < 1:
        raise ValueError(f"n_subjects must be at least 1, got {n_subjects}")
    skill = NOISE_PRESETS[noise] if isinstance(noise, str) and noise in NOISE_PRESETS else noise
    if not isinstance(skill, SkillDistribution):
        raise ValueError(f"unknown noise {noise!r}; known presets: {', '.join(NOISE_PRESETS)}")
    width, height = (float(side) for side in image_size)
    if n_volunteers is None:
        n_volunteers = max(30, round(n_subjects * classifications_per_subject / 80))
    parameters = {
        "n_subjects": n_subjects, "seed": seed, "image_size": [width, height],
        "objects_per_subject_mean": objects_per_subject_mean, "colonies_per_subject_max": colonies_per_subject_max,
        "colony_radius": colony_radius, "min_separation": min_separation, "object_size": object_size,
        "n_volunteers": n_volunteers, "classifications_per_subject": classifications_per_subject,
        "noise": noise if isinstance(noise, str) else vars(noise), "logged_out_fraction": logged_out_fraction,
        "activity_shape": activity_shape, "start": start, "duration_days": duration_days,
    }
    rng = np.random.default_rng(seed)
    subject_ids = first_subject_id + np.arange(n_subjects, dtype=np.int64)
    colonies = _colonies(rng, n_subjects, colonies_per_subject_max, colony_radius, width, height)
    truth = _simulate_animals(rng, subject_ids, colonies, objects_per_subject_mean, colony_radius, min_separation,
                              width, height)
    volunteers = _simulate_volunteers(rng, n_volunteers, skill, logged_out_fraction, activity_shape,
                                      classifications_per_subject)
    classification_subject, classification_volunteer, created_seconds = _assign_classifications(
        rng, subject_ids, volunteers, classifications_per_subject, duration_days)
    order = np.argsort(created_seconds, kind="stable")
    classification_subject, classification_volunteer = classification_subject[order], classification_volunteer[order]
    created_seconds = created_seconds[order]
    n_classifications = len(order)
    classification_ids = first_classification_id + np.arange(n_classifications, dtype=np.int64)

    clicks = _simulate_clicks(rng, truth, volunteers, classification_subject, classification_volunteer, subject_ids,
                              colonies, colony_radius, object_size)
    clicks = {**clicks, "width": np.nan, "height": np.nan}
    classifications, marks, subjects = canonical_tables(
        volunteers, classification_ids, classification_subject, classification_volunteer, created_seconds, start,
        1, "1.1", "pfe", clicks, "Adults", "point", subject_ids, width, height)
    return SimulatedProject(truth=truth, classifications=classifications, marks=marks, volunteers=volunteers,
                            subjects=subjects, parameters=parameters)


def _colonies(rng, n_subjects, colonies_max, radius, width, height) -> pd.DataFrame:
    """Colony centres: 1 to ``colonies_max`` per subject, a radius away from the frame's edges."""
    count = rng.integers(1, colonies_max + 1, n_subjects)
    subject = np.repeat(np.arange(n_subjects), count)
    margin_x, margin_y = min(radius, width / 4), min(radius, height / 4)
    return pd.DataFrame({
        "subject": subject,
        "x": rng.uniform(margin_x, width - margin_x, len(subject)),
        "y": rng.uniform(margin_y, height - margin_y, len(subject)),
        "first": np.repeat(np.cumsum(count) - count, count),
        "count": np.repeat(count, count),
    })


def _around_colonies(rng, subject, colonies, radius):
    """Positions near a random colony of each given subject (clicks may fall off the frame, as real ones do)."""
    first = colonies["first"].to_numpy()
    count = colonies["count"].to_numpy()
    # Each subject's colonies are consecutive rows: look up the first, then pick one.
    subject_first = np.zeros(int(colonies["subject"].max()) + 1, dtype=np.int64)
    subject_count = np.zeros_like(subject_first)
    subject_first[colonies["subject"].to_numpy()] = first
    subject_count[colonies["subject"].to_numpy()] = count
    colony = subject_first[subject] + (rng.random(len(subject)) * subject_count[subject]).astype(np.int64)
    x = colonies["x"].to_numpy()[colony] + rng.normal(0, radius, len(subject))
    y = colonies["y"].to_numpy()[colony] + rng.normal(0, radius, len(subject))
    return x, y


def _inside(x, y, width, height):
    """Positions moved onto the frame: animals are in the picture."""
    return np.clip(x, 0, width - 1), np.clip(y, 0, height - 1)


def _simulate_animals(rng, subject_ids, colonies, mean, radius, min_separation, width, height) -> pd.DataFrame:
    """True animals: Poisson per subject, around the colonies, never closer than ``min_separation``."""
    n_animals = rng.poisson(mean, size=len(subject_ids))
    subject = np.repeat(np.arange(len(subject_ids)), n_animals)
    x, y = _inside(*_around_colonies(rng, subject, colonies, radius), width, height)
    keep = np.ones(len(subject), dtype=bool)
    for _ in range(30):
        first, second, _ = point_pairs(subject, x, y, min_separation)
        if len(first) == 0:
            break
        # Move the later animal of each crowded pair elsewhere in its subject's colonies.
        crowded = np.unique(second)
        x[crowded], y[crowded] = _inside(*_around_colonies(rng, subject[crowded], colonies, radius), width, height)
    else:
        # A frame too small for its animals: drop the ones still crowded.
        first, second, _ = point_pairs(subject, x, y, min_separation)
        keep[np.unique(second)] = False
    subject, x, y = subject[keep], x[keep], y[keep]
    order = np.lexsort((x, subject))
    return pd.DataFrame({
        "subject_id": subject_ids[subject[order]],
        "truth_id": np.arange(len(order), dtype=np.int64),
        "x": x[order], "y": y[order], "width": 0.0, "height": 0.0,
        "detectability": rng.beta(6.0, 1.0, len(order)),
    })


def _simulate_clicks(rng, truth, volunteers, classification_subject, classification_volunteer, subject_ids,
                     colonies, colony_radius, object_size) -> dict:
    """Every click: found animals (with scatter), second clicks, clicks on nothing; ordered by classification."""
    n_classifications = len(classification_subject)
    skill = {name: volunteers[name].to_numpy()[classification_volunteer]
             for name in ("miss_rate", "spurious_rate", "position_sigma", "double_rate", "empty_rate")}
    subject_index = classification_subject - subject_ids[0]
    animals_per_subject = np.bincount(truth["subject_id"].to_numpy() - subject_ids[0], minlength=len(subject_ids))
    first_animal = np.cumsum(animals_per_subject) - animals_per_subject
    pairs = animals_per_subject[subject_index]
    pair_classification = np.repeat(np.arange(n_classifications), pairs)
    pair_truth = first_animal[subject_index[pair_classification]] + (
        np.arange(len(pair_classification)) - np.repeat(np.cumsum(pairs) - pairs, pairs))
    detectability = truth["detectability"].to_numpy()[pair_truth]
    seen = rng.random(len(pair_truth)) < (1 - skill["miss_rate"][pair_classification]) * detectability
    found_classification, found_truth = pair_classification[seen], pair_truth[seen]
    doubled = rng.random(len(found_truth)) < skill["double_rate"][found_classification]
    found_classification = np.r_[found_classification, found_classification[doubled]]
    found_truth = np.r_[found_truth, found_truth[doubled]]
    is_double = np.r_[np.zeros(int(seen.sum()), dtype=bool), np.ones(int(doubled.sum()), dtype=bool)]
    sigma = skill["position_sigma"][found_classification] * object_size
    found_x = truth["x"].to_numpy()[found_truth] + rng.normal(0, 1, len(found_truth)) * sigma
    found_y = truth["y"].to_numpy()[found_truth] + rng.normal(0, 1, len(found_truth)) * sigma

    n_spurious = rng.poisson(skill["spurious_rate"])
    spurious_classification = np.repeat(np.arange(n_classifications), n_spurious)
    spurious_x, spurious_y = _around_colonies(rng, subject_index[spurious_classification], colonies, 1.3 * colony_radius)
    classification = np.r_[found_classification, spurious_classification]
    x, y = np.r_[found_x, spurious_x], np.r_[found_y, spurious_y]
    truth_id = np.r_[truth["truth_id"].to_numpy()[found_truth], np.full(len(spurious_classification), -1, np.int64)]
    double = np.r_[is_double, np.zeros(len(spurious_classification), dtype=bool)]
    empty = rng.random(n_classifications) < skill["empty_rate"]
    selected = np.flatnonzero(~empty[classification])
    # Clicks in a random order within each classification, as a volunteer makes them.
    selected = selected[np.argsort(classification[selected] + rng.random(len(selected)))]
    return {"classification": classification[selected], "x": x[selected], "y": y[selected],
            "truth_id": truth_id[selected], "double": double[selected]}
