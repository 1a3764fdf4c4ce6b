"""Training sets from the (reviewed) consensus, and an expert subject set from the disagreements.

- `write_coco`: a COCO detection dataset (``images``, ``annotations``,
  ``categories``), the format pycocotools, Detectron2 and torchvision read;
- `write_yolo`: YOLO text labels, one ``labels/<subject_id>.txt`` per subject
  with ``class x_centre y_centre width height`` in fractions of the image size,
  ``images.txt`` listing each subject's image in the same order, and ``data.yaml``
  naming the classes;
- `write_subject_manifest`: the subjects where humans and machine disagree as a
  Zooniverse subject-set import manifest (``external_id``, ``location:1``, ...,
  ``metadata:<key>``; the format of Panoptes' ``subject_set_imports``), to send
  them to an expert workflow.

Images are referenced, never copied: a COCO ``file_name`` and a line of
``images.txt`` are the subject's location (frame ``frame``) as the subject export
gives it, a URL or a path relative to that export. YOLO tools find a label file
from the image's name, so link or download the images as ``images/<subject_id>.<ext>``
beside ``labels/`` before training. YOLO needs each image's size: subjects
without ``width`` and ``height`` (fill them from the images with
`data_loaders.celestial.picture_sizes`) are left out and counted.

COCO's ``bbox`` and YOLO's box are axis-aligned: rotated boxes are left out and
counted, as are boxes without area. Classes come from the boxes' ``label`` column
when they have one (every distinct label, sorted), else there is one class,
``category``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from .writers import to_safe_csv

BOX_COLUMNS = ("subject_id", "x", "y", "width", "height")


def _frame_locations(subjects: pd.DataFrame, frame: int) -> pd.Series:
    """Each subject's location of ``frame`` (None where it has none), indexed like ``subjects``."""
    key = str(frame)

    def location(frames):
        if isinstance(frames, str):
            frames = orjson.loads(frames)
        return frames.get(key) if isinstance(frames, dict) else None

    return subjects["locations"].map(location)


def _usable_boxes(boxes: pd.DataFrame, subject_ids: np.ndarray, counts: dict) -> pd.DataFrame:
    """The boxes of the given subjects that an axis-aligned format can hold; the others counted."""
    missing = [column for column in BOX_COLUMNS if column not in boxes.columns]
    if missing:
        raise ValueError(f"boxes table lacks column(s) {missing}; it has {list(boxes.columns)}")
    boxes = boxes[boxes["subject_id"].isin(subject_ids)]
    angle = boxes["angle"].fillna(0).to_numpy(float) if "angle" in boxes else np.zeros(len(boxes))
    rotated = np.remainder(angle, 180.0) != 0
    sizes = boxes[["width", "height"]].to_numpy(float)
    no_area = ~(np.isfinite(sizes).all(axis=1) & (sizes > 0).all(axis=1))
    counts["rotated_boxes_left_out"] = int(rotated.sum())
    counts["boxes_without_area_left_out"] = int((no_area & ~rotated).sum())
    return boxes[~rotated & ~no_area]


def _classes(boxes: pd.DataFrame, category: str) -> tuple[list[str], np.ndarray]:
    """Class names, and each box's index into them."""
    if "label" not in boxes.columns:
        return [category], np.zeros(len(boxes), dtype=np.int64)
    labels = boxes["label"].astype("string").fillna(category)
    codes, names = pd.factorize(labels, sort=True)
    return [str(name) for name in names], codes.astype(np.int64)


def coco_dataset(boxes: pd.DataFrame, subjects: pd.DataFrame, frame: int = 0,
                 category: str = "object") -> tuple[dict, dict]:
    """The COCO detection dataset of ``boxes`` on ``subjects``, and counts of what was left out.

    Parameters
    ----------
    boxes : pandas.DataFrame
        The (reviewed) consensus: ``subject_id``, ``x``, ``y``, ``width``,
        ``height``; ``consensus_id``, ``angle``, ``label`` when present.
    subjects : pandas.DataFrame
        Canonical subjects (``subject_id``, ``locations``, ``width``, ``height``):
        every one becomes an image, those without boxes too (they are negatives).
    frame : int
        Which frame's image each subject stands for.
    category : str
        The class name when ``boxes`` has no ``label`` column.

    Returns
    -------
    dataset, counts : dict, dict
        Image ids are subject ids; each image keeps ``subject_id`` and, when
        known, ``width`` and ``height``. Annotation ids run from 1, category ids too.
    """
    counts: dict = {}
    locations = _frame_locations(subjects, frame)
    located = locations.notna().to_numpy()
    counts["subjects_without_image_left_out"] = int((~located).sum())
    subjects = subjects[located]
    locations = locations[located]
    boxes = _usable_boxes(boxes, subjects["subject_id"].to_numpy(), counts)
    names, classes = _classes(boxes, category)

    images = pd.DataFrame({"id": subjects["subject_id"].to_numpy(np.int64),
                           "file_name": locations.to_numpy(dtype=object),
                           "subject_id": subjects["subject_id"].to_numpy(np.int64)})
    records = images.to_dict(orient="records")
    width = subjects["width"].to_numpy(float, na_value=np.nan)
    height = subjects["height"].to_numpy(float, na_value=np.nan)
    sized = np.isfinite(width) & np.isfinite(height)
    for record, known, w, h in zip(records, sized, width, height):
        if known:
            record["width"], record["height"] = int(round(w)), int(round(h))
    counts["images_without_size"] = int((~sized).sum())

    geometry = boxes[["x", "y", "width", "height"]].to_numpy(float)
    annotations = pd.DataFrame({
        "id": np.arange(1, len(boxes) + 1, dtype=np.int64),
        "image_id": boxes["subject_id"].to_numpy(np.int64),
        "category_id": classes + 1,
        "bbox": geometry.tolist(),
        "area": geometry[:, 2] * geometry[:, 3],
        "iscrowd": 0,
    })
    if "consensus_id" in boxes.columns:
        annotations["consensus_id"] = boxes["consensus_id"].to_numpy(np.int64)
    counts.update(images=len(records), annotations=len(annotations), categories=len(names))
    dataset = {
        "info": {"description": "Training set exported by zoolens from the volunteer consensus"},
        "images": records,
        "annotations": annotations.to_dict(orient="records"),
        "categories": [{"id": index + 1, "name": name} for index, name in enumerate(names)],
    }
    return dataset, counts


def write_coco(boxes: pd.DataFrame, subjects: pd.DataFrame, path: str | os.PathLike, frame: int = 0,
               category: str = "object") -> dict:
    """Write `coco_dataset` as a JSON file; return its counts (see `coco_dataset` for the parameters)."""
    dataset, counts = coco_dataset(boxes, subjects, frame=frame, category=category)
    Path(path).write_bytes(orjson.dumps(dataset, option=orjson.OPT_SERIALIZE_NUMPY))
    return counts


def write_yolo(boxes: pd.DataFrame, subjects: pd.DataFrame, folder: str | os.PathLike, frame: int = 0,
               category: str = "object") -> dict:
    """Write YOLO labels for ``boxes`` on ``subjects`` into ``folder``; return counts.

    Writes ``labels/<subject_id>.txt`` (an empty file for a subject without boxes),
    ``images.txt`` (each subject's image location, in subject order) and
    ``data.yaml`` (the class names). Box parts outside the image are cut off;
    boxes entirely outside it are left out and counted. Parameters are those of
    `coco_dataset`.
    """
    folder = Path(folder)
    counts: dict = {}
    locations = _frame_locations(subjects, frame)
    width = subjects["width"].to_numpy(float, na_value=np.nan)
    height = subjects["height"].to_numpy(float, na_value=np.nan)
    usable = locations.notna().to_numpy() & np.isfinite(width) & np.isfinite(height) & (width > 0) & (height > 0)
    counts["subjects_without_image_or_size_left_out"] = int((~usable).sum())
    subjects, locations = subjects[usable], locations[usable]
    sizes = pd.DataFrame({"image_width": width[usable], "image_height": height[usable]},
                         index=subjects["subject_id"].to_numpy(np.int64))
    boxes = _usable_boxes(boxes, subjects["subject_id"].to_numpy(), counts)
    names, classes = _classes(boxes, category)

    subject_ids = boxes["subject_id"].to_numpy(np.int64)
    image_width = sizes["image_width"].reindex(subject_ids).to_numpy()
    image_height = sizes["image_height"].reindex(subject_ids).to_numpy()
    x, y, w, h = (boxes[column].to_numpy(float) for column in ("x", "y", "width", "height"))
    left, right = np.clip(x, 0, image_width), np.clip(x + w, 0, image_width)
    top, bottom = np.clip(y, 0, image_height), np.clip(y + h, 0, image_height)
    inside = (right > left) & (bottom > top)
    counts["boxes_outside_image_left_out"] = int((~inside).sum())
    counts["boxes_cut_at_image_edge"] = int((inside & ((left > x) | (right < x + w) | (top > y)
                                                       | (bottom < y + h))).sum())
    columns = np.column_stack([(left + right) / 2 / image_width, (top + bottom) / 2 / image_height,
                               (right - left) / image_width, (bottom - top) / image_height])[inside]
    lines = classes[inside].astype(str)
    for values in columns.T:
        lines = np.char.add(np.char.add(lines, " "), np.char.mod("%.6f", values))
    lines = pd.Series(lines, dtype=object)
    text = lines.groupby(subject_ids[inside]).agg(lambda group: "\n".join(group) + "\n")

    labels = folder / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    for subject_id in subjects["subject_id"].to_numpy(np.int64):
        (labels / f"{subject_id}.txt").write_text(text.get(subject_id, ""))
    (folder / "images.txt").write_text("".join(f"{location}\n" for location in locations))
    names_yaml = "".join(f"  {index}: {orjson.dumps(name).decode()}\n" for index, name in enumerate(names))
    (folder / "data.yaml").write_text(f"# Written by zoolens: labels/<subject_id>.txt, images listed in "
                                      f"images.txt\ntrain: images.txt\nnc: {len(names)}\nnames:\n{names_yaml}")
    counts.update(images=len(subjects), boxes=int(inside.sum()), classes=len(names))
    return counts


def write_subject_manifest(disagreements: pd.DataFrame, subjects: pd.DataFrame, path: str | os.PathLike) -> dict:
    """Write subjects as a Zooniverse subject-set import manifest CSV; return counts.

    Parameters
    ----------
    disagreements : pandas.DataFrame
        One row per subject to send, in the order to write them: ``subject_id``
        and the numbers to carry along (e.g. `consensus.detections.DetectionMatch.subject_counts`
        filtered to the subjects with ``disagreement`` > 0). Each other column
        becomes hidden metadata ``metadata:#<column>``, for the experts' export.
    subjects : pandas.DataFrame
        Canonical subjects, for each subject's locations (every frame, in order).
    path : str or path-like
        The CSV file. Text starting like a spreadsheet formula is neutralised.

    Returns
    -------
    dict
        ``subjects`` written, ``subjects_without_location`` left out, and
        ``locations_not_urls`` (paths a Zooniverse import cannot fetch: upload those
        images first and put their URLs in).
    """
    frames = subjects.set_index("subject_id")["locations"].map(
        lambda value: orjson.loads(value) if isinstance(value, str) else value)
    found = frames.reindex(disagreements["subject_id"].to_numpy())
    has_location = found.map(lambda value: isinstance(value, dict) and bool(value)).to_numpy(dtype=bool)
    rows = disagreements[has_location].reset_index(drop=True)
    found = found[has_location]
    n_frames = max((len(value) for value in found), default=1)
    manifest = pd.DataFrame({"external_id": rows["subject_id"].to_numpy(np.int64)})
    for index in range(n_frames):
        manifest[f"location:{index + 1}"] = [
            value[sorted(value, key=int)[index]] if index < len(value) else None for value in found]
    manifest["metadata:#subject_id"] = manifest["external_id"]
    for column in rows.columns.drop("subject_id"):
        manifest[f"metadata:#{column}"] = rows[column].to_numpy()
    locations = manifest.filter(like="location:").stack().dropna()
    neutralised = to_safe_csv(manifest, path)
    return {"subjects": len(manifest), "subjects_without_location": int((~has_location).sum()),
            "locations_not_urls": int((~locations.astype(str).str.match(r"^https?://")).sum()),
            "formula_cells_neutralised": neutralised}
