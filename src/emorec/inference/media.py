"""Frames in and out: cameras, videos, images and folders as one frame source; decode
ahead and encode behind on background threads."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from emorec.errors import EmorecError


# ----------------------------------------------------------------------------- inputs
@dataclass
class Source:
    frames: Iterator[tuple[int, float, np.ndarray | None]]
    fps: float
    size: tuple[int, int] | None
    total: int | None
    kind: str
    release: callable = lambda: None


def open_source(source: str) -> Source:
    """A webcam index or a video file (photos go through emorec.inference.photos)."""
    if source.isdigit():
        cap = cv2.VideoCapture(int(source))
        if not cap.isOpened():
            raise EmorecError(f"camera {source} cannot be opened (no such device, or it is in use)")
        return _video_frames(cap, "camera")
    path = Path(source)
    if not path.exists():
        raise EmorecError(f"input {path} not found")
    cap = cv2.VideoCapture(str(path))
    ok, first = cap.read()
    if not cap.isOpened() or not ok:
        cap.release()
        raise EmorecError(f"{path}: cannot read video (unsupported, damaged or empty)")
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    return _video_frames(cap, "video")


def _video_frames(cap, kind: str) -> Source:
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if kind == "video" else None
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def frames():
        index = 0
        while True:
            grabbed = cap.grab()
            if not grabbed:
                if total and index < total:  # a frame that will not decode mid-stream
                    index += 1
                    yield index - 1, (index - 1) / fps, None
                    if index < total:
                        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
                        continue
                return
            ok, frame = cap.retrieve()
            yield index, index / fps, frame if ok else None
            index += 1

    return Source(frames(), fps, size, total, kind, cap.release)


# ----------------------------------------------------------------------------- overlapped I/O
_END = object()


class Prefetch:
    """Decode the next frames on a background thread while the current one is processed;
    OpenCV releases the GIL while it decodes. `close()` stops the thread before the
    capture is released, so the two never touch it at once."""

    def __init__(self, frames: Iterator, depth: int = 4):
        self._queue: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._fill, args=(frames,), daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _fill(self, frames: Iterator) -> None:
        try:
            for item in frames:
                if not self._put(item):
                    return
        except BaseException as exc:  # re-raised on the main thread by next()
            self._error = exc
        self._put(_END)

    def next(self):
        """The next (index, time, frame), or None at the end of the source."""
        item = self._queue.get()
        if item is _END:
            if self._error is not None:
                raise self._error
            return None
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class BackgroundWriter:
    """cv2.VideoWriter fed from a queue on its own thread; encoding overlaps the next frame."""

    def __init__(self, writer, depth: int = 8):
        self._writer = writer
        self._queue: queue.Queue = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (frame := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._writer.write(frame)
                except BaseException as exc:
                    self._error = exc

    def write(self, frame: np.ndarray) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(frame)

    def release(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._writer.release()
        if self._error is not None:
            raise self._error


class _Inline:
    """The same interfaces without threads (`threaded_io: false`)."""

    def __init__(self, frames: Iterator):
        self._frames = iter(frames)

    def next(self):
        return next(self._frames, None)

    def close(self) -> None:
        pass


