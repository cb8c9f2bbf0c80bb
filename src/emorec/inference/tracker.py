"""Tracks faces across video frames (IoU matching) and smooths each track's class
probabilities (EMA) so labels do not flicker."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emorec.errors import EmorecError
from emorec.inference.boxes import iou_matrix


# ----------------------------------------------------------------------------- tracking
@dataclass
class Track:
    track_id: int
    box: np.ndarray
    probs: np.ndarray
    landmarks: np.ndarray | None = None
    missed: int = 0
    hits: int = 1
    timeline: list = field(default_factory=list)  # (frame, smoothed probs)


class Tracker:
    """Greedy IoU matching of detections to tracks; EMA smoothing of class probabilities."""

    def __init__(self, iou_threshold: float = 0.3, ema: float = 0.6, max_missed: int = 10):
        if not 0 <= ema < 1:
            raise EmorecError(f"params.yaml: infer.ema must be in [0, 1), got {ema}")
        self.iou_threshold, self.ema, self.max_missed = iou_threshold, ema, max_missed
        self.tracks: list[Track] = []
        self.next_id = 1
        self.finished: list[Track] = []

    def assign(self, boxes: np.ndarray) -> list[Track | None]:
        """For each detection, the live track it continues (None: a new face)."""
        ious = iou_matrix(boxes, np.array([t.box for t in self.tracks]).reshape(-1, 4))
        owner: list[Track | None] = [None] * len(boxes)
        used = set()
        for flat in np.argsort(-ious, axis=None) if ious.size else []:
            d, t = np.unravel_index(flat, ious.shape)
            if ious[d, t] < self.iou_threshold:
                break
            if owner[d] is None and t not in used:
                owner[d] = self.tracks[t]
                used.add(t)
        return owner

    def update(self, frame_index: int, boxes: np.ndarray, probs: np.ndarray,
               landmarks: list[np.ndarray | None]) -> list[Track]:
        owners = self.assign(boxes)
        seen = []
        for box, p, lm, track in zip(boxes, probs, landmarks, owners):
            if track is None:
                track = Track(self.next_id, box, p.copy(), lm)
                self.next_id += 1
                self.tracks.append(track)
            else:
                track.box, track.landmarks, track.missed = box, lm, 0
                track.probs = self.ema * track.probs + (1 - self.ema) * p
                track.hits += 1
            track.timeline.append((frame_index, track.probs.copy()))
            seen.append(track)
        for track in self.tracks:
            if all(track is not s for s in seen):
                track.missed += 1
        self.finished += [t for t in self.tracks if t.missed > self.max_missed]
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return seen

    def all_tracks(self) -> list[Track]:
        return sorted(self.finished + self.tracks, key=lambda t: t.track_id)


