"""The vote quorum learned from a project's own support fractions.

A candidate box's *support fraction* is its votes over the volunteers who saw
its subject (including those who drew nothing). Over a whole project the
fractions of the candidates that at least two volunteers agree on are
multimodal: chance coincidences of stray boxes near 2/n, real targets high up,
and, where some volunteers habitually box something that is not a target (a
foreground star, an image artefact), a middle mode of tidy clusters supported
by the same minority on every subject. The quorum that separates the targets
from everything below them is the deepest valley of that histogram below the
highest mode.

The histogram is summed over partitions (`support_histogram` per partition),
so the pandas and Dask paths learn the same value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Bins of the support-fraction histogram over [0, 1].
BINS = 100
#: Standard deviation of the Gaussian that smooths the histogram, in vote fraction:
#: wider than the spacing of k / n for the ~20 volunteers a subject typically has,
#: so the lattice of possible fractions does not make valleys of its own.
SMOOTHING = 0.04
#: Fewer candidates than this (with 2 or more votes) are too few to learn from.
MIN_CANDIDATES = 100
#: Each side of a valley holds at least this share of the candidates: a valley cutting off a
#: sliver (a handful of near-unanimous clusters on a noisy project) is noise, not two populations.
MIN_SIDE_SHARE = 0.2
#: A valley counts when both sides rise to at least this many times its density ...
MIN_DEPTH = 1.1
#: ... and by at least this many standard deviations of the smoothed counts (Poisson): with a few
#: hundred fractions on the lattice of k / n, chance alone makes dips of one or two.
MIN_SIGNIFICANCE = 2.0
#: Valleys are looked for between these fractions: below, a pair of votes from
#: 20 volunteers; above, a quorum would drop targets most volunteers find.
SEARCH = (0.1, 0.7)


@dataclass(frozen=True)
class LearnedQuorum:
    """The learned quorum and how it was found."""

    vote_fraction: float
    #: "valley" (found in the histogram) or "fallback" (too few candidates or no valley).
    found_by: str
    candidates: int


def support_histogram(votes: np.ndarray, n_seen: np.ndarray) -> np.ndarray:
    """Counts of the support fractions of candidates with at least two votes, in `BINS` bins over [0, 1]."""
    agreed = (votes >= 2) & (n_seen > 0)
    fraction = np.clip(votes[agreed] / n_seen[agreed], 0.0, 1.0)
    return np.bincount(np.minimum((fraction * BINS).astype(np.int64), BINS - 1), minlength=BINS).astype(float)


def smoothed(histogram: np.ndarray) -> np.ndarray:
    """The histogram convolved with a Gaussian of `SMOOTHING`, reflected at 0 and 1 so the ends keep their mass."""
    width = SMOOTHING * BINS
    half = int(4 * width)
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / width) ** 2)
    return np.convolve(np.pad(histogram, half, mode="reflect"), kernel / kernel.sum(), mode="valid")


def learn_vote_fraction(histogram: np.ndarray, fallback: float) -> LearnedQuorum:
    """The deepest valley of the smoothed support-fraction histogram, or ``fallback`` when there is none.

    A valley is a point between `SEARCH`'s bounds, with at least `MIN_SIDE_SHARE` of
    the candidates on each side, where the lower of the highest densities on its two
    sides is at least `MIN_DEPTH` times its density and exceeds it by `MIN_SIGNIFICANCE`
    standard deviations of the smoothed counts; of those, the most significant.
    """
    candidates = int(histogram.sum())
    if candidates < MIN_CANDIDATES:
        return LearnedQuorum(fallback, "fallback", candidates)
    density = smoothed(histogram)
    centres = (np.arange(BINS) + 0.5) / BINS
    left_peak = np.maximum.accumulate(density)
    right_peak = np.maximum.accumulate(density[::-1])[::-1]
    peak = np.minimum(left_peak, right_peak)
    floor = max(density.max() * 1e-6, 1e-12)
    # Variance of a Gaussian-smoothed Poisson count: its mean times the sum of the squared kernel weights.
    kernel_squares = 1.0 / (2.0 * np.sqrt(np.pi) * SMOOTHING * BINS)
    significance = (peak - density) / np.sqrt(np.maximum((peak + density) * kernel_squares, floor))
    below = np.cumsum(histogram) / candidates
    inside = (centres >= SEARCH[0]) & (centres <= SEARCH[1]) & (below >= MIN_SIDE_SHARE) & (below <= 1 - MIN_SIDE_SHARE)
    valley = inside & (peak >= MIN_DEPTH * np.maximum(density, floor)) & (significance >= MIN_SIGNIFICANCE)
    if not valley.any():
        return LearnedQuorum(fallback, "fallback", candidates)
    bottom = int(np.argmax(np.where(valley, significance, -np.inf)))
    # The valley's floor: the lowest fraction of its basin within 10 % of its density,
    # since below the targets' mode keeping a rare faint target costs less than the
    # few chance boxes a flat floor holds.
    outside_floor = np.flatnonzero((density[: bottom + 1] > density[bottom] * 1.1) | ~inside[: bottom + 1])
    start = int(outside_floor[-1]) + 1 if len(outside_floor) else 0
    # The lower edge of the floor's lowest bin: every fraction in that bin is kept.
    return LearnedQuorum(round(start / BINS, 3), "valley", candidates)
