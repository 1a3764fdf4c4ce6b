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
  where volunteers usually draw, e.g. on the galaxy);
- subjects also hold distractors, objects that are not targets (a foreground
  star, an artefact): volunteer w boxes each distractor they see with
  probability d_w, scattering like their target boxes. Most volunteers never
  do; the few who habitually do make a tidy cluster supported by the same
  minority on every subject, which random false positives never make.

Candidates are the clusters of the ``iou`` method's clustering and merging
(one mark per volunteer each, singletons included). For a candidate r the log
odds that it is an object (a target or a distractor) rather than chance false
positives, with the true box integrated out under a flat prior (so a single
mark carries no positional evidence, and n agreeing marks carry n - 1
coincidences' worth), are

    log [pi_t exp(T_r) + pi_d exp(D_r)] - log (1 - pi_t - pi_d)
    + sum over member marks k of volunteer w:  - log lam_w
                                               + log g(z_k | b_r) - log u(z_k)
    + log u(b_r) + log of the volume of b_r's posterior,

    T_r = sum over volunteers w who saw the subject without voting: log fn_w
          + sum over voters: log (1 - fn_w)
    D_r = the same with 1 - d_w for fn_w,

Which kind of object it is turns on who voted, not how many: the odds that it
is a distractor rather than a target are

    log pi_d / pi_t + D_r - log B(k + 1, n - k + 1),

k of its n viewers voting, with the targets' votes taken as exchangeable at an
unknown rate of their own (a uniform prior: faint targets are missed by many,
bright ones by few), so only a cluster whose voters are the ones who box
distractors everywhere else looks like a distractor. A target is
P(object) (1 - P(distractor | object)); ``false_pos_prob`` is one minus that.

with g the scatter density, u the false-positive density and b_r the
inverse-variance weighted mean of the members. EM alternates: posteriors
p_r = P(r real) and box positions given the skills (E), then each
volunteer's fn, lam, var and d from expected counts with Beta / Gamma-style
pseudo-counts towards the crowd's values (M); the crowd's values, pi_t and
pi_d are re-estimated too. It starts from the iou method's quorum as the first
E-step, with the clusters below the valley of the project's vote fractions
(`consensus.quorum`) as the first distractors when there is such a valley.
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
from scipy.special import gammaln

from .base import AggregationResult, ClusteringAggregator, partition_output, reassign
from .estimate import Estimates, Members, normalised_residuals, weighted_boxes
from .prepare import Prepared
from .quorum import learn_vote_fraction, support_histogram
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
        valley = learn_vote_fraction(np.sum(states.map(_support_histogram).gather(), axis=0), 0.0)
        distractors_below = valley.vote_fraction if valley.found_by == "valley" else 0.0
        skills = Skills.from_sums(states.map(_initial_sums, self.initial_vote_fraction, distractors_below).gather(),
                                  self.prior_strength)
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

    @property
    def n_seen(self) -> np.ndarray:
        """Volunteers who saw the subject of every candidate."""
        return self.prep.n_seen_subject[self.subject]


def _candidates(state) -> Candidates:
    prep, members = state
    return Candidates(prep=prep, members=members)


def _support_histogram(state: Candidates) -> np.ndarray:
    return support_histogram(state.members.count(), state.n_seen)


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


#: Log odds by which the voters' own distractor rates must explain a cluster's votes better than
#: the crowd's rate does before it counts as a distractor (20:1): the rates are fitted to the same votes.
IDENTITY_MARGIN = np.log(20.0)
#: The crowd's distractor rate before any evidence, and how many views of distractors that guess is worth.
DISTRACTOR_PRIOR = 0.01
DISTRACTOR_PRIOR_VIEWS = 1000.0


class Skills:
    """Every volunteer's miss rate fn, false-positive rate lam, scatter var and distractor rate d, the crowd's, pi_t and pi_d.

    Built from expected counts summed over partitions (the M-step).
    """

    def __init__(self, volunteers: pd.DataFrame, crowd: dict, pi: float, pi_distractor: float):
        self.volunteers = volunteers
        self.crowd = crowd
        self.pi = pi
        self.pi_distractor = pi_distractor

    @classmethod
    def from_sums(cls, parts: list[tuple[pd.DataFrame, np.ndarray]], prior_strength: float) -> Skills:
        """Skills from each partition's per-volunteer sums and its (real, candidate) box counts.

        The sums' columns: expected detections (``detected``), expected real boxes on
        subjects seen (``boxes_seen``), expected ``false_positives``, ``classifications``,
        weighted squared ``residual`` and its degrees of freedom (``dof``), expected
        distractors boxed (``distractors_boxed``) and on subjects seen (``distractors_seen``).
        """
        totals = pd.concat([part[0] for part in parts]).groupby(level=0).sum()
        real, distractors, candidates = np.sum([part[1] for part in parts], axis=0)
        a = prior_strength
        boxes_seen = totals["boxes_seen"].sum()
        crowd = {
            "fn": _clip(((boxes_seen - totals["detected"].sum()) / boxes_seen) if boxes_seen > 0 else 0.5, 0.01, 0.99),
            "lam": max(totals["false_positives"].sum() / max(totals["classifications"].sum(), 1.0), 1e-3),
            "var": max(totals["residual"].sum() / totals["dof"].sum() if totals["dof"].sum() > 0 else 0.05, 1e-4),
            # Distractors are what a minority boxes: the crowd's rate is pulled towards
            # DISTRACTOR_PRIOR by DISTRACTOR_PRIOR_VIEWS pseudo-views and never passes a half,
            # so a project without them cannot drift into calling its targets distractors.
            "d": _clip((totals["distractors_boxed"].sum() + DISTRACTOR_PRIOR_VIEWS * DISTRACTOR_PRIOR)
                       / (totals["distractors_seen"].sum() + DISTRACTOR_PRIOR_VIEWS), 1e-3, 0.5),
        }
        volunteers = pd.DataFrame(index=totals.index)
        volunteers["fn"] = _clip((totals["boxes_seen"] - totals["detected"] + a * crowd["fn"]) / (totals["boxes_seen"] + a), 1e-3, 1 - 1e-3)
        volunteers["lam"] = ((totals["false_positives"] + a * crowd["lam"]) / (totals["classifications"] + a)).clip(lower=1e-4)
        volunteers["var"] = ((totals["residual"] + 4 * a * crowd["var"]) / (totals["dof"] + 4 * a)).clip(lower=1e-5)
        volunteers["d"] = _clip((totals["distractors_boxed"] + a * crowd["d"]) / (totals["distractors_seen"] + a),
                                1e-4, 1 - 1e-3)
        volunteers = pd.concat([volunteers, totals], axis=1)
        pi = _clip(real / candidates if candidates else 0.5, 1e-3, 1 - 1e-3)
        # Some share is always left for chance false positives.
        pi_distractor = _clip(distractors / candidates if candidates else 0.0, 1e-6, max(1 - 1e-3 - pi, 1e-6))
        return cls(volunteers, crowd, pi, pi_distractor)

    def of(self, names: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(fn, lam, var, d) per volunteer name; the crowd's for names without an estimate."""
        table = self.volunteers.reindex(names)
        return tuple(table[key].fillna(self.crowd[key]).to_numpy(float) for key in ("fn", "lam", "var", "d"))

    def close_to(self, other: Skills, tolerance: float) -> bool:
        """Whether no volunteer's fn, log lam or log var moved by more than ``tolerance``."""
        if not self.volunteers.index.equals(other.volunteers.index):
            return False
        change = max(
            np.abs(self.volunteers["fn"] - other.volunteers["fn"]).max(),
            np.abs(np.log(self.volunteers["lam"] / other.volunteers["lam"])).max(),
            np.abs(np.log(self.volunteers["var"] / other.volunteers["var"])).max(),
            np.abs(self.volunteers["d"] - other.volunteers["d"]).max(),
            abs(self.pi - other.pi),
            abs(self.pi_distractor - other.pi_distractor),
        )
        return bool(change <= tolerance)

    def table(self) -> pd.DataFrame:
        """The volunteers' estimated skills, one row per volunteer."""
        table = self.volunteers.rename(columns={
            "fn": "false_neg_prob", "lam": "false_pos_per_classification", "detected": "expected_detections",
            "boxes_seen": "expected_boxes_seen", "false_positives": "expected_false_positives",
            "d": "distractor_prob", "distractors_boxed": "expected_distractors_boxed",
            "distractors_seen": "expected_distractors_seen",
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
    distractor: np.ndarray  # P(r is a distractor)
    residual: np.ndarray  # r^2 per member
    leverage: np.ndarray  # share of its box's weight each member has
    sigma: np.ndarray  # posterior std of each box, normalised units


def _posterior(state: Candidates, skills: Skills, background: Background) -> Posterior:
    prep, members = state.prep, state.members
    marks = prep.marks
    fn, lam, var, distractor_rate = skills.of(prep.volunteer_names)
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
    per_member = -np.log(lam[member_volunteer]) + log_g - log_u_marks
    subjects = len(prep.subject_ids)
    # Every volunteer who saw the subject missed the object, except the voters (whose miss is taken back).
    target_votes = _vote_log_likelihood(state, np.log(fn), np.log1p(-fn), subjects)
    distractor_votes = _vote_log_likelihood(state, np.log1p(-distractor_rate), np.log(distractor_rate), subjects)
    posterior_variance = 1.0 / total_weight
    log_odds = (
        np.logaddexp(np.log(skills.pi) + target_votes, np.log(skills.pi_distractor) + distractor_votes)
        - np.log1p(-skills.pi - skills.pi_distractor)
        + segment_sum(per_member, members.box, n)
        + background.log_density(boxes.cx, boxes.cy, boxes.width, boxes.height)
        + 2 * _LOG_2PI + box_log_size + 2.0 * np.log(posterior_variance)
    )
    is_object = _sigmoid(log_odds)
    anyone_votes = _exchangeable_log_likelihood(state, fn, skills.crowd["fn"], subjects)
    distractor = is_object * _sigmoid(
        np.log(skills.pi_distractor / skills.pi) + distractor_votes - anyone_votes)
    return Posterior(boxes=boxes, real=is_object - distractor, distractor=distractor, residual=residual,
                     leverage=leverage, sigma=np.sqrt(posterior_variance))


def _sigmoid(log_odds: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(log_odds, -60, 60)))


def _exchangeable_log_likelihood(state: Candidates, fn: np.ndarray, crowd_fn: float, subjects: int) -> np.ndarray:
    """Per candidate: log P(its k votes) when its viewers vote alike at an unknown rate (uniform prior).

    Only viewers who box targets count in full: each counts as (1 - fn_w) / (1 - crowd fn), at most
    one, so a volunteer who never draws anything did not miss the candidate.
    """
    prep, members = state.prep, state.members
    weight = np.minimum((1.0 - fn[prep.view_volunteer]) / (1.0 - crowd_fn), 1.0)
    k = members.count().astype(float)
    n = np.maximum(np.bincount(prep.view_subject, weights=weight, minlength=subjects)[state.subject], k)
    return gammaln(k + 1) + gammaln(n - k + 1) - gammaln(n + 2)


def _vote_log_likelihood(state: Candidates, log_not_voting: np.ndarray, log_voting: np.ndarray, subjects: int) -> np.ndarray:
    """Per candidate: log P(exactly its members voted) when each viewer w votes with exp(log_voting[w])."""
    prep, members = state.prep, state.members
    not_voting = np.bincount(prep.view_subject, weights=log_not_voting[prep.view_volunteer], minlength=subjects)
    member_volunteer = prep.volunteer[members.mark]
    switch = log_voting[member_volunteer] - log_not_voting[member_volunteer]
    return not_voting[state.subject] + segment_sum(switch, members.box, members.n_boxes)


def _volunteer_sums(state: Candidates, real: np.ndarray, distractor: np.ndarray, residual: np.ndarray,
                    leverage: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-volunteer expected counts given the probability each candidate is real or a distractor (the M-step's input)."""
    prep, members = state.prep, state.members
    n_volunteers = prep.n_volunteers
    member_volunteer = prep.volunteer[members.mark]
    p = real[members.box]
    p_distractor = distractor[members.box]
    real_per_subject = np.bincount(state.subject, weights=real, minlength=len(prep.subject_ids))
    distractors_per_subject = np.bincount(state.subject, weights=distractor, minlength=len(prep.subject_ids))
    sums = pd.DataFrame({
        "detected": np.bincount(member_volunteer, weights=p, minlength=n_volunteers),
        "boxes_seen": np.bincount(prep.view_volunteer, weights=real_per_subject[prep.view_subject], minlength=n_volunteers),
        "false_positives": np.bincount(member_volunteer, weights=np.clip(1.0 - p - p_distractor, 0.0, 1.0),
                                       minlength=n_volunteers),
        "classifications": np.bincount(prep.view_volunteer, weights=prep.view_classifications, minlength=n_volunteers),
        "residual": np.bincount(member_volunteer, weights=p * residual, minlength=n_volunteers),
        "dof": np.bincount(member_volunteer, weights=4.0 * p * (1.0 - leverage), minlength=n_volunteers),
        "distractors_boxed": np.bincount(member_volunteer, weights=p_distractor, minlength=n_volunteers),
        "distractors_seen": np.bincount(prep.view_volunteer, weights=distractors_per_subject[prep.view_subject],
                                        minlength=n_volunteers),
    }, index=pd.Index(prep.volunteer_names, name="user"))
    return sums, np.array([real.sum(), distractor.sum(), len(real)])


def _initial_sums(state: Candidates, vote_fraction: float, distractors_below: float):
    """M-step input from the starting guess: objects = clusters with a quorum, distractors those of them
    below ``distractors_below`` of the viewers, positions = their member-wise mean."""
    prep, members = state.prep, state.members
    size = members.count()
    n_seen = state.n_seen
    is_object = (size >= 2) & (size >= np.ceil(vote_fraction * n_seen - 1e-9))
    distractor = (is_object & (size < np.ceil(distractors_below * n_seen - 1e-9))).astype(float)
    real = is_object - distractor
    boxes = weighted_boxes(prep.marks, members, np.ones(len(members.mark)))
    residual = normalised_residuals(prep.marks, members, boxes)
    leverage = 1.0 / size[members.box]
    return _volunteer_sums(state, real, distractor, residual, leverage)


def _expected_sums(state: Candidates, skills: Skills, background: Background):
    posterior = _posterior(state, skills, background)
    return _volunteer_sums(state, posterior.real, posterior.distractor, posterior.residual, posterior.leverage)


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
