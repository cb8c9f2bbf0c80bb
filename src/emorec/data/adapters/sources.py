"""Finding a dataset on disk (configured path, environment variable, shared folder,
optional Kaggle download), verifying checksums and reading archives safely."""

from __future__ import annotations

import io as _io
import os
import posixpath
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

from emorec import files
from emorec.errors import DataFormatError, DataNotFoundError, EmorecError


@dataclass
class Candidate:
    """One place that was searched, and why."""

    label: str
    path: Path | None
    note: str = ""


def check_member_name(name: str, archive: str | os.PathLike) -> str:
    """Refuse archive members that would escape the extraction folder."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DataFormatError(f"{archive}: refusing archive member with an absolute path: {name!r}")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        raise DataFormatError(f"{archive}: refusing archive member with '..' in its path: {name!r}")
    return posixpath.normpath(name.replace("\\", "/"))


DEFAULT_LIMITS = {"max_member_mb": 512, "max_compression_ratio": 100}


class ArchiveReader:
    """Uniform, safe, in-memory access to a zip, a tar(.gz) or a folder.

    Member names are checked before anything is read; nothing is written to disk. A member
    larger than `limits.max_member_mb`, or (zip) packed more than `max_compression_ratio`
    times smaller than it unpacks, is refused before a byte of it is read.
    """

    def __init__(self, path: str | os.PathLike, limits: dict | None = None):
        self.path = Path(path)
        limits = {**DEFAULT_LIMITS, **(limits or {})}
        self.max_bytes = int(float(limits["max_member_mb"]) * 1024 * 1024)
        self.max_ratio = float(limits["max_compression_ratio"])
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        try:
            if self.path.is_dir():
                self._names = sorted(p.relative_to(self.path).as_posix() for p in self._folder_files())
            elif zipfile.is_zipfile(self.path):
                self._zip = zipfile.ZipFile(self.path)
                self._names = [check_member_name(i.filename, self.path)
                               for i in self._zip.infolist() if not i.is_dir()]
                self._zip_names = {check_member_name(i.filename, self.path): i.filename
                                   for i in self._zip.infolist() if not i.is_dir()}
            elif tarfile.is_tarfile(self.path):
                self._tar = tarfile.open(self.path)
                members = self._tar.getmembers()
                for m in members:
                    check_member_name(m.name, self.path)
                    if m.issym() or m.islnk():
                        raise DataFormatError(f"{self.path}: refusing link member {m.name!r}")
                self._tar_members = {posixpath.normpath(m.name): m for m in members if m.isfile()}
                self._names = sorted(self._tar_members)
            else:
                raise DataFormatError(f"{self.path}: not a folder, zip or tar archive")
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            raise DataFormatError(f"{self.path}: cannot read archive ({exc})") from exc

    def _folder_files(self) -> list[Path]:
        """Files of a folder layout; a link that resolves outside the folder is refused,
        as archives refuse link members."""
        top = self.path.resolve()
        found = []
        for p in self.path.rglob("*"):
            if p.is_symlink():
                target = p.resolve()
                if target != top and top not in target.parents:
                    raise DataFormatError(f"{self.path}: refusing link {p.relative_to(self.path)} -> "
                                          f"{target}, which leaves the dataset folder")
            if p.is_file():
                found.append(p)
        return found

    def names(self) -> list[str]:
        return list(self._names)

    def _check_size(self, name: str) -> None:
        if self._zip is not None:
            info = self._zip.getinfo(self._zip_names[name])
            size, packed = info.file_size, info.compress_size
        elif self._tar is not None:
            size, packed = self._tar_members[name].size, None
        else:
            size, packed = (self.path / name).stat().st_size, None
        if size > self.max_bytes:
            raise DataFormatError(f"{self.path}: member {name!r} unpacks to {size / 2**20:.0f} MiB, over the "
                                  f"limit of {self.max_bytes / 2**20:.0f} MiB (limits.max_member_mb)")
        if packed is not None and size > 1 << 20 and size > self.max_ratio * max(packed, 1):
            raise DataFormatError(f"{self.path}: member {name!r} is packed {size / max(packed, 1):.0f}x "
                                  f"({packed} bytes -> {size}), over limits.max_compression_ratio "
                                  f"{self.max_ratio:g}: refused as a likely decompression bomb")

    def read(self, name: str) -> bytes:
        try:
            self._check_size(name)
            if self._zip is not None:
                return self._zip.read(self._zip_names[name])
            if self._tar is not None:
                fh = self._tar.extractfile(self._tar_members[name])
                assert fh is not None
                return fh.read()
            return (self.path / name).read_bytes()
        except (KeyError, zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as exc:
            raise DataFormatError(f"{self.path}: cannot read member {name!r} ({exc})") from exc

    def open_text(self, name: str) -> _io.TextIOBase:
        return _io.TextIOWrapper(_io.BytesIO(self.read(name)), encoding="utf-8", newline="")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        if self._tar is not None:
            self._tar.close()

    def __enter__(self) -> "ArchiveReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def verify_sha256(path: Path, expected, where: str = "sha256") -> None:
    expected = files.sha256_setting(expected, where)
    if expected is None:
        return
    if path.is_dir():
        raise DataFormatError(
            f"{path}: a sha256 is configured but the dataset is a folder; "
            "configure the archive instead, or set sha256 to null"
        )
    actual = files.sha256_file(path)
    if actual.lower() != expected.strip().lower():
        raise DataFormatError(
            f"{path}: sha256 mismatch: expected {expected.strip().lower()}, got {actual}. "
            "The file is corrupt or a different release; re-download it or update the "
            "configured sha256."
        )


def find_source(
    dataset: str,
    configured: str | None,
    env_var: str | None,
    fallbacks: list[str],
    how_to_get: str,
    downloader: Callable[[], Path | None] | None = None,
    root: Path | None = None,
) -> tuple[Path, str]:
    """Return (path, how it was found); raise DataNotFoundError listing every place searched."""
    root = root or Path.cwd()
    searched: list[Candidate] = []

    def resolve(p: str) -> Path:
        path = Path(os.path.expanduser(p))
        return path if path.is_absolute() else (root / path)

    if configured:
        searched.append(Candidate("params.yaml", resolve(configured)))
    else:
        searched.append(Candidate("params.yaml", None, "no path configured"))
    if env_var:
        value = os.environ.get(env_var)
        searched.append(Candidate(f"${env_var}", resolve(value) if value else None,
                                  "" if value else "not set"))
    for fb in fallbacks:
        searched.append(Candidate("shared data folder", resolve(fb)))
    for cand in searched[: 1 + bool(env_var)]:   # what the user named explicitly must exist
        if cand.path is not None and not cand.path.exists():
            raise EmorecError(f"{dataset}: {cand.label} names {cand.path}, which does not exist "
                              f"(fix or unset {'fetch.' + dataset + '.path' if cand.label == 'params.yaml' else cand.label})")
    for cand in searched:
        if cand.path is not None and cand.path.exists():
            return cand.path, f"{cand.label}: {cand.path}"
        if cand.path is not None and not cand.note:
            cand.note = "does not exist"
    if downloader is not None:
        try:
            path = downloader()
        except DataNotFoundError as exc:
            searched.append(Candidate("Kaggle download", None, str(exc)))
        else:
            if path is not None:
                return path, f"Kaggle download: {path}"
    lines = [f"no copy of {dataset} found. Places searched, in order:"]
    for i, cand in enumerate(searched, 1):
        where = str(cand.path) if cand.path is not None else "-"
        lines.append(f"  {i}. {cand.label}: {where} ({cand.note})")
    lines.append(how_to_get)
    raise DataNotFoundError("\n".join(lines))


def kaggle_download(dataset_slug: str, dest: Path) -> Path:
    """Download a Kaggle dataset when credentials and the `kaggle` package are present."""
    has_creds = (Path.home() / ".kaggle" / "kaggle.json").exists() or (
        os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY")
    )
    if not has_creds:
        raise DataNotFoundError("skipped: no Kaggle credentials (~/.kaggle/kaggle.json or "
                                "KAGGLE_USERNAME/KAGGLE_KEY)")
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi  # type: ignore
    except ImportError:
        raise DataNotFoundError("skipped: credentials found but the `kaggle` package is not "
                                "installed (pip install kaggle)") from None
    api = KaggleApi()
    api.authenticate()
    dest.mkdir(parents=True, exist_ok=True)
    api.dataset_download_files(dataset_slug, path=str(dest), unzip=False, quiet=False)
    zips = sorted(dest.glob("*.zip"))
    if not zips:
        raise DataNotFoundError(f"Kaggle download of {dataset_slug} produced no zip in {dest}")
    return zips[0]


def iter_matching(names: list[str], predicate: Callable[[str], bool]) -> Iterator[str]:
    return (n for n in names if predicate(n))
