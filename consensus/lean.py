"""The ``lean`` method: volunteer-skill-aware consensus by EM, after Branson, Van Horn & Perona (2017).

"Lean Crowdsourcing: Combining Humans and Machines in an Online System"
(CVPR 2017) models a set of boxes per image: each true object is drawn by a
worker with probability 1 - p_fn (else missed), drawn boxes scatter around the
true box with a worker-specific variance, and workers also draw false-positive
boxes. Worker skills and the true boxes are estimated together, skills are
pooled towards the crowd's through priors so a worker with few annotations is
not trusted blindly, and the *risk* of an image is the expected number of errors
in its current estimate. This module implements that model for volunteers:

Generative model, for volunteer w on a subject with true boxes B:

- each b in B is drawn with probability 1 - fn_w, missed with probability fn_w;
- a drawn box scatters around b with variance var_w in the normalised
  coordinates of `consensus.estimate` ((cx, cy) in units of b's size, log width,
  log height), the same for small and large boxes;
- false-positive marks arrive as a Poisson process with rate lam_w per
  classification, spread like marks in general: a Gaussian in centre and log
  size fitted to every mark of the project (so a false positive is more likely
  where volunteers usually draw, e.g. on the galaxy).

Candidates are the clusters of the ``iou`` method's clustering and merging
(one mark per volunteer each, singletons included). For a candidate r the log
odds that it is a real object, with the true box integrated out under a flat
prior (so a single mark carries no positional evidence, and n agreeing marks
carry n - 1 coincidences' worth), are

    log pi / (1 - pi)
    + sum over volunteers who saw the subject without voting:  log fn_w
    + sum over member marks k of volunteer w:  log (1 - fn_w) - log lam_w
                                               + log g(z_k | b_r) - log u(z_k)
    + log u(b_r) + log of the volume of b_r's posterior,

with g the scatter density, u the false-positive density and b_r the
inverse-variance weighted mean of the members. EM alternates: posteriors
p_r = P(r real) and box positions given the skills (E), then each
volunteer's fn, lam and var from expected counts with Beta / Gamma-style
pseudo-counts towards the crowd's values (M); the crowd's values and pi are
re-estimated too. It starts from the iou method's quorum as the first E-step.
Where the paper approximates the sum over matchings of marks to boxes by the
best one, here the matching is the clustering's (one mark per volunteer per
candidate), fixed during EM, which keeps every iteration a few linear passes
over the marks.

Outputs: boxes with false_pos_prob = 1 - p_r <= ``max_false_pos_prob``,
``sigma`` (posterior standard deviation of the box in units of its size), and
per subject the ``risk``: the expected number of wrong keep/drop decisions
among its candidates, sum of p_r over dropped plus 1 - p_r over kept ones.
``result.volunteers`` holds every volunteer's estimated skill.

Not modelled here, unlike the paper: computer-vision priors, per-image
difficulty and the online choice of which image to show next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import param

from .base import AggregationResult, ClusteringAggregator, partition_output, reassign
from .estimate import Estimates, Members, normalised_residuals, weighted_boxes
from .prepare import Prepared
from .segments import segment_sum

_LOG_2PI = np.log(2 * np.pi)


class LeanCrowdsourcing(ClusteringAggregator):
    """Volunteer-skill-aware EM (Branson et al. 2017): per-volunteer miss and false-positive rates and scatter."""

    short_name = "lean"

    #: Candidates, unlike the iou method's votes, are weighed by the model, so a
    #: stricter neighbour threshold keeps far-off marks out of their box's estimate.
    cluster_iou = 0.4
    max_false_pos_prob = param.Number(
        default=0.5, bounds=(0.0, 1.0),
        doc="Keep a candidate box when its posterior probability of being a false positive is at most this.",
    )
    prior_strength = param.Number(
        default=5.0, bounds=(0.0, None),
        doc="Pseudo-observations (boxes, classifications, votes) pulling each volunteer's rates and "
            "scatter towards the crowd's, so a volunteer with few classifications is judged mostly by the crowd.",
    )
    iterations = param.Integer(default=30, bounds=(1, 1000), doc="Most EM iterations to run.")
    tolerance = param.Number(
        default=1e-4, bounds=(0.0, None),
        doc="EM stops when no volunteer's miss rate, or log false-positive rate or log variance, changes by more.",
    )
    initial_vote_fraction = param.Number(
        default=0.2, bounds=(0.0, 1.0),
        doc="Starting guess: candidates with at least this share of the subject's volunteers (and 2 votes) are real.",
    )

    @classmethod
    def extra_columns(cls) -> dict[str, str]:
        return {"false_pos_prob": "float64", "sigma": "float64", "risk": "float64"}

    @classmethod
    def subject_columns(cls) -> dict[str, str]:
        return {"risk": "float64"}

    def run(self, partitions) -> AggregationResult:
        states = self.clusters(partitions).map(_candidates).persist()
        background = Background.from_sums(states.map(_mark_sums).gather())
        skills = Skills.from_sums(states.map(_initial_sums, self.initial_vote_fraction).gather(), self.prior_strength)
        for _ in range(self.iterations):
            updated = Skills.from_sums(states.map(_expected_sums, skills, background).gather(), self.prior_strength)
            converged = skills.close_to(updated, self.tolerance)
            skills = updated
            if converged:
                break
        outputs = states.map(_finish, self, skills, background)
        return self.collect(outputs, volunteers=skills.table())


@dataclass
class Candidates:
    """One partition's marks and candidate boxes (clusters, one mark per volunteer)."""

    prep: Prepared
    members: Members

    @property
    def subject(self) -> np.ndarray:
        """Subject code of every candidate."""
        group = np.zeros(self.members.n_boxes, dtype=np.int64)
        group[self.members.box] = self.prep.marks.group[self.members.mark]
        return self.prep.groups["subject"].to_numpy()[group]


def _candidates(state) -> Candidates:
    prep, members = state
    return Candidates(prep=prep, members=members)


def _coordinates(cx, cy, width, height) -> np.ndarray:
    """The four coordinates of the false-positive density: centre and log size."""
    return np.stack([cx, cy, np.log(width), np.log(height)])


def _mark_sums(state: Candidates) -> np.ndarray:
    marks = state.prep.marks
    values = _coordinates(marks.cx, marks.cy, marks.width, marks.height)
    return np.concatenate([[values.shape[1]], values.sum(axis=1), (values**2).sum(axis=1)])


@dataclass
class Background:
    """The density u of false-positive marks: independent Gaussians in centre and log size over all marks."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def from_sums(cls, sums: list[np.ndarray]) -> Background:
        total = np.sum(sums, axis=0)
        n = max(total[0], 1.0)
        mean = total[1:5] / n
        variance = np.maximum(total[5:9] / n - mean**2, 0.0)
        # Floors keep a small or uniform sample from making chance agreement look
        # likely: false positives spread at least a box's size in position and a
        # factor e^0.3 (35 %) in size.
        box_size = np.exp(mean[2:4])
        floor = np.array([box_size[0], box_size[1], 0.3, 0.3])
        return cls(mean=mean, std=np.maximum(np.sqrt(variance), floor))

    def log_density(self, cx, cy, width, height) -> np.ndarray:
        z = (_coordinates(cx, cy, width, height) - self.mean[:, None]) / self.std[:, None]
        return np.sum(-0.5 * z**2 - np.log(self.std)[:, None] - 0.5 * _LOG_2PI, axis=0)


class Skills:
    """Every volunteer's miss rate fn, false-positive rate lam and scatter var, the crowd's, and pi.

    Built from expected counts summed over partitions (the M-step).
    """

    def __init__(self, volunteers: pd.DataFrame, crowd: dict, pi: float):
        self.volunteers = volunteers
        self.crowd = crowd
        self.pi = pi

    @classmethod
    def from_sums(cls, parts: list[tuple[pd.DataFrame, np.ndarray]], prior_strength: float) -> Skills:
        """Skills from each partition's per-volunteer sums and its (real, candidate) box counts.

        The sums' columns: expected detections (``detected``), expected real boxes on
        subjects seen (``boxes_seen``), expected ``false_positives``, ``classifications``,
        weighted squared ``residual`` and its degrees of freedom (``dof``).
        """
        totals = pd.concat([part[0] for part in parts]).groupby(level=0).sum()
        real, candidates = np.sum([part[1] for part in parts], axis=0)
        a = prior_strength
        boxes_seen = totals["boxes_seen"].sum()
        crowd = {
            "fn": _clip(((boxes_seen - totals["detected"].sum()) / boxes_seen) if boxes_seen > 0 else 0.5, 0.01, 0.99),
            "lam": max(totals["false_positives"].sum() / max(totals["classifications"].sum(), 1.0), 1e-3),
            "var": max(totals["residual"].sum() / totals["dof"].sum() if totals["dof"].sum() > 0 else 0.05, 1e-4),
        }
        volunteers = pd.DataFrame(index=totals.index)
        volunteers["fn"] = _clip((totals["boxes_seen"] - totals["detected"] + a * crowd["fn"]) / (totals["boxes_seen"] + a), 1e-3, 1 - 1e-3)
        volunteers["lam"] = ((totals["false_positives"] + a * crowd["lam"]) / (totals["classifications"] + a)).clip(lower=1e-4)
        volunteers["var"] = ((totals["residual"] + 4 * a * crowd["var"]) / (totals["dof"] + 4 * a)).clip(lower=1e-5)
        volunteers = pd.concat([volunteers, totals], axis=1)
        return cls(volunteers, crowd, _clip(real / candidates if candidates else 0.5, 1e-3, 1 - 1e-3))

    def of(self, names: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fn, lam, var) per volunteer name; the crowd's for names without an estimate."""
        table = self.volunteers.reindex(names)
        return (
            table["fn"].fillna(self.crowd["fn"]).to_numpy(float),
            table["lam"].fillna(self.crowd["lam"]).to_numpy(float),
            table["var"].fillna(self.crowd["var"]).to_numpy(float),
        )

    def close_to(self, other: Skills, tolerance: float) -> bool:
        """Whether no volunteer's fn, log lam or log var moved by more than ``tolerance``."""
        if not self.volunteers.index.equals(other.volunteers.index):
            return False
        change = max(
            np.abs(self.volunteers["fn"] - other.volunteers["fn"]).max(),
            np.abs(np.log(self.volunteers["lam"] / other.volunteers["lam"])).max(),
            np.abs(np.log(self.volunteers["var"] / other.volunteers["var"])).max(),
            abs(self.pi - other.pi),
        )
        return bool(change <= tolerance)

    def table(self) -> pd.DataFrame:
        """The volunteers' estimated skills, one row per volunteer."""
        table = self.volunteers.rename(columns={
            "fn": "false_neg_prob", "lam": "false_pos_per_classification", "detected": "expected_detections",
            "boxes_seen": "expected_boxes_seen", "false_positives": "expected_false_positives",
        })
        table["sigma"] = np.sqrt(table.pop("var"))
        table = table.drop(columns=["residual", "dof"])
        table["classifications"] = table["classifications"].astype(np.int64)
        table.index.name = "user"
        return table.reset_index()


def _clip(value, low, high):
    return np.clip(value, low, high)


@dataclass
class Posterior:
    """E-step result for one partition's candidates."""

    boxes: Estimates
    real: np.ndarray  # p_r
    residual: np.ndarray  # r^2 per member
    leverage: np.ndarray  # share of its box's weight each member has
    sigma: np.ndarray  # posterior std of each box, normalised units


def _posterior(state: Candidates, skills: Skills, background: Background) -> Posterior:
    prep, members = state.prep, state.members
    marks = prep.marks
    fn, lam, var = skills.of(prep.volunteer_names)
    member_volunteer = prep.volunteer[members.mark]
    weight = 1.0 / var[member_volunteer]
    n = members.n_boxes
    boxes = weighted_boxes(marks, members, weight)
    residual = normalised_residuals(marks, members, boxes)
    total_weight = segment_sum(weight, members.box, n)
    leverage = weight / total_weight[members.box]
    box_log_size = np.log(boxes.width) + np.log(boxes.height)

    index = members.mark
    log_u_marks = background.log_density(marks.cx[index], marks.cy[index], marks.width[index], marks.height[index])
    log_g = -0.5 * residual * weight - 2.0 * np.log(var[member_volunteer]) - box_log_size[members.box] - 2 * _LOG_2PI
    per_member = (
        np.log1p(-fn[member_volunteer]) - np.log(fn[member_volunteer]) - np.log(lam[member_volunteer])
        + log_g - log_u_marks
    )
    # Every volunteer who saw the subject missed the box, except the members (whose log fn is taken back above).
    log_fn_seen = np.bincount(prep.view_subject, weights=np.log(fn[prep.view_volunteer]), minlength=len(prep.subject_ids))
    posterior_variance = 1.0 / total_weight
    log_odds = (
        np.log(skills.pi / (1 - skills.pi))
        + log_fn_seen[state.subject]
        + segment_sum(per_member, members.box, n)
        + background.log_density(boxes.cx, boxes.cy, boxes.width, boxes.height)
        + 2 * _LOG_2PI + box_log_size + 2.0 * np.log(posterior_variance)
    )
    real = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -60, 60)))
    return Posterior(boxes=boxes, real=real, residual=residual, leverage=leverage, sigma=np.sqrt(posterior_variance))


def _volunteer_sums(state: Candidates, real: np.ndarray, residual: np.ndarray, leverage: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-volunteer expected counts given the probability each candidate is real (the M-step's input)."""
    prep, members = state.prep, state.members
    n_volunteers = prep.n_volunteers
    member_volunteer = prep.volunteer[members.mark]
    p = real[members.box]
    real_per_subject = np.bincount(state.subject, weights=real, minlength=len(prep.subject_ids))
    sums = pd.DataFrame({
        "detected": np.bincount(member_volunteer, weights=p, minlength=n_volunteers),
        "boxes_seen": np.bincount(prep.view_volunteer, weights=real_per_subject[prep.view_subject], minlength=n_volunteers),
        "false_positives": np.bincount(member_volunteer, weights=1.0 - p, minlength=n_volunteers),
        "classifications": np.bincount(prep.view_volunteer, weights=prep.view_classifications, minlength=n_volunteers),
        "residual": np.bincount(member_volunteer, weights=p * residual, minlength=n_volunteers),
        "dof": np.bincount(member_volunteer, weights=4.0 * p * (1.0 - leverage), minlength=n_volunteers),
    }, index=pd.Index(prep.volunteer_names, name="user"))
    return sums, np.array([real.sum(), len(real)])


def _initial_sums(state: Candidates, vote_fraction: float):
    """M-step input from the starting guess: real = clusters with a quorum, positions = their member-wise mean."""
    prep, members = state.prep, state.members
    size = members.count()
    n_seen = prep.n_seen_subject[state.subject]
    real = ((size >= 2) & (size >= np.ceil(vote_fraction * n_seen - 1e-9))).astype(float)
    boxes = weighted_boxes(prep.marks, members, np.ones(len(members.mark)))
    residual = normalised_residuals(prep.marks, members, boxes)
    leverage = 1.0 / size[members.box]
    return _volunteer_sums(state, real, residual, leverage)


def _expected_sums(state: Candidates, skills: Skills, background: Background):
    posterior = _posterior(state, skills, background)
    return _volunteer_sums(state, posterior.real, posterior.residual, posterior.leverage)


def _finish(state: Candidates, aggregator: LeanCrowdsourcing, skills: Skills, background: Background):
    prep = state.prep
    posterior = _posterior(state, skills, background)
    false_pos_prob = 1.0 - posterior.real
    kept = false_pos_prob <= aggregator.max_false_pos_prob
    wrong = np.where(kept, false_pos_prob, posterior.real)
    risk = np.bincount(state.subject, weights=wrong, minlength=len(prep.subject_ids))
    index = np.flatnonzero(kept)
    boxes, assignment, order = reassign(prep, posterior.boxes.take(index), aggregator.min_iou)
    index = index[order]
    subject_of_box = state.subject[index]
    return partition_output(
        aggregator, prep, boxes, assignment,
        box_columns={
            "false_pos_prob": false_pos_prob[index],
            "sigma": posterior.sigma[index],
            "risk": risk[subject_of_box],
        },
        subject_columns={"risk": risk},
    )
