"""Reading images in: an image folder or archive (laid out as <class>/<image> or
<split>/<class>/<image>) checked, labelled with the dataset's class names and
cleaned into bytes every decoder reads. Free of TensorFlow, so the GPU
benchmark can read the same archives on a machine without it."""
from __future__ import annotations

import io
import os
import stat
import sys
import tarfile
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np
from PIL import Image, ImageOps

from ablation.core.errors import DataError
from ablation.data.datasets import class_names

# Pillow decodes all of these; anything but JPEG and PNG is stored re-encoded as PNG.
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SPLIT_DIRS = {"train", "test"}


class ReadLimits(NamedTuple):
    """What one input file may cost before it is read (`data.max_file_mb`,
    `data.max_image_megapixels`): a file or image over them is skipped and counted
    like a corrupt one, so a small archive cannot grow the fetch without bound."""
    max_file_bytes: int = 64 * 2**20
    max_pixels: int = 50_000_000


class Progress:
    """One line of progress on stderr every `every` items, and at the end."""

    def __init__(self, what: str, every: int = 5000):
        self.what, self.every, self.count, self.start = what, every, 0, time.time()

    def step(self):
        self.count += 1
        if self.count % self.every == 0:
            self._print()

    def _print(self):
        rate = self.count / max(time.time() - self.start, 1e-9)
        print(f"{self.what}: {self.count:,} ({rate:,.0f}/s)", file=sys.stderr, flush=True)

    def done(self):
        self._print()


def _is_listed(name: str) -> bool:
    """Every file but hidden ones (.DS_Store, ._resource forks)."""
    return not any(part.startswith(".") for part in name.split("/") if part not in (".", ""))


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


ReadBytes = Callable[[], "bytes | None"]  # a member's bytes, None when it cannot be read

# Why a file was skipped, as fetch reports it: the fix differs.
TOO_LARGE = "over data.max_file_mb"
TOO_MANY_PIXELS = "over data.max_image_megapixels, or longer than 16 times its width"
UNREADABLE = "not a readable image (corrupt, truncated, a link or an unreadable name)"


class _Unread(NamedTuple):
    """read() of a file that is not read, with the reason."""
    reason: str

    def __call__(self) -> None:
        return None


def _iter_files(path: Path, max_bytes: int) -> Iterator[tuple[str, ReadBytes]]:
    """Yields (relative path, read()) for every file, in a stable order; read()
    gives None for a file that cannot be used (unreadable, a dangling or looping
    symlink, a name that is not UTF-8, larger than `max_bytes`: checked from the
    declared size before reading). A truncated or corrupt archive is a DataError
    naming it, whether met while listing or reading."""
    def corrupt(error: Exception) -> DataError:
        return DataError(f"{path} cannot be read to the end ({type(error).__name__}: {str(error).splitlines()[0]}): "
                         "a truncated or corrupt archive. Fix: copy or download it again, or point data.paths at an "
                         "unpacked folder.")

    def checked(read: Callable[[], bytes]) -> ReadBytes:
        def read_checked():
            try:
                return read()
            except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
                raise corrupt(error) from None
        return read_checked

    is_dir = path.is_dir()  # once, not per file
    try:
        for name, size, read in _iter_files_unchecked(path):
            if size is None or size > max_bytes or not _is_utf8(name):
                yield _printable(name), _Unread(TOO_LARGE if size is not None and size > max_bytes else UNREADABLE)
            else:
                yield name, (read if is_dir else checked(read))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as error:
        raise corrupt(error) from None
    except OSError as error:
        if is_dir:  # a directory that cannot be listed
            raise DataError(f"{path} cannot be listed ({error.strerror}: {error.filename}). Fix: check its "
                            "permissions.") from None
        raise corrupt(error) from None


ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
# An image's decoded size is bounded by data.max_image_megapixels; its shape too: a
# 300,000 x 1 PNG is 0.3 megapixels, yet resizing it to a square takes gigabytes.
MAX_ASPECT = 16  # longer side over shorter side
EXIF_ORIENTATION = 0x0112  # the EXIF tag saying how a stored image is turned
MAX_SIDE = 16384  # pixels
# A tar header's own payload (a GNU long name, a pax record) is read whole into memory
# by tarfile: a few hundred bytes in any real archive, 2 GiB in a hostile one.
MAX_TAR_HEADER = 2**20


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile's member record with the header payload bounded before it is read.
    tarfile has no such option; its documented `tarinfo=` hook is the one place to add it."""

    def _proc_member(self, archive):
        if self.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE) \
                and self.size > MAX_TAR_HEADER:
            raise tarfile.HeaderError(f"a header of {self.size:,} bytes (at most {MAX_TAR_HEADER:,})")
        return super()._proc_member(archive)


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")  # os.walk turns undecodable bytes into surrogates
        return True
    except UnicodeEncodeError:
        return False


def _printable(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _read_or_none(path: Path, limit: int) -> bytes | None:
    """The file's bytes, None past `limit` (what is read is bounded, whatever its stat
    said) or when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError:  # vanished, dangling or looping symlink, unreadable
        return None
    return data if len(data) <= limit else None


def _regular_size(path: Path) -> int | None:
    """The size of a regular file (a symlink's target checked, not the link); None for
    a device, FIFO or socket (a `.jpg` link to /dev/zero never ends), or a dangling link."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


def _iter_files_unchecked(path: Path) -> Iterator[tuple[str, int | None, Callable[[], bytes]]]:
    """(name, declared size or None when it cannot be known, read) per file."""
    name = path.name.lower()
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs.sort()
            # os.walk does not enter a linked folder (a loop would never end): it is counted, not read.
            for linked in [d for d in dirs if (Path(root) / d).is_symlink()]:
                yield (Path(root) / linked).relative_to(path).as_posix() + "/", None, _Unread(UNREADABLE)
            for file in sorted(files):
                full = Path(root) / file
                relative = full.relative_to(path).as_posix()
                if _is_listed(relative):
                    size = _regular_size(full)
                    yield relative, size, lambda full=full, size=size: _read_or_none(full, size or 0)
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path, tarinfo=_BoundedTarInfo) as archive:
            for member in archive:
                if not _is_listed(member.name) or member.isdir():
                    continue
                if not member.isfile():  # a link, device or FIFO member: counted, not followed
                    yield member.name.lstrip("./"), None, _Unread(UNREADABLE)
                    continue
                # Read while the stream is at this member (the caller reads before the next one).
                yield (member.name.lstrip("./"), member.size,
                       lambda member=member: archive.extractfile(member).read())
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                # ZipFile stops decompressing at the declared file_size, so it bounds the read.
                if not info.is_dir() and _is_listed(info.filename):
                    # An encrypted member, or one of a compression zipfile cannot undo: counted, not read.
                    readable = not info.flag_bits & 0x1 and info.compress_type in ZIP_METHODS
                    yield (info.filename, info.file_size if readable else None,
                           lambda info=info: archive.read(info))
    else:
        raise DataError(f"{path} is neither a directory nor a .tar.gz/.tgz/.zip archive. "
                        "Fix: point data.paths.<dataset> at an image folder or archive.")


def _layout(names: list[str]) -> tuple[int, bool, list[str]]:
    """How to read split and class from the image paths: (wrapper directories to
    skip, whether split directories train/test come first, the paths that fit
    neither layout: stray files outside class folders)."""
    parts = {name: name.split("/") for name in names}
    # Images sit at the most common depth; anything shallower or deeper is stray.
    depth = Counter(len(p) for p in parts.values()).most_common(1)[0][0]
    strays = [name for name, p in parts.items() if len(p) != depth]
    kept = [p for p in parts.values() if len(p) == depth]
    skip = 0
    # Descend through wrapper directories (PetImages/) shared by every image.
    while depth - skip > 2 and len({p[skip] for p in kept}) == 1 and kept[0][skip].lower() not in SPLIT_DIRS:
        skip += 1
    has_splits = depth - skip >= 3 and all(p[skip].lower() in SPLIT_DIRS for p in kept)
    if depth - skip < 2 or (depth - skip > 2 and not has_splits):
        # Images directly in the root, or nested deeper than <split>/<class>/<image>.
        raise DataError("images must be laid out as <class>/<image> or <split>/<class>/<image> (splits: train, "
                        f"test), e.g. {kept[0] and '/'.join(kept[0])!r} is not. Fix: reorganize the folder.")
    return skip, has_splits, strays


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB. Pillow's convert() clips 16-bit and 32-bit integer samples to 255
    (a 0..65535 gradient would be white), so those are scaled to 0..255 first."""
    if image.mode.startswith("I;16") or image.mode == "I":
        samples = np.asarray(image, dtype=np.float64) / 257.0  # 65535 -> 255
        image = Image.fromarray(np.clip(np.round(samples), 0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        samples = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(np.round(samples * (255.0 if samples.max() <= 1.0 else 1.0)), 0, 255)
                                .astype(np.uint8), "L")
    return image.convert("RGB")


def _clean_image(data: bytes | None, max_pixels: int) -> tuple[bytes, str] | str:
    """The bytes to store for a file and their format, or why it is not a usable image
    (more than `max_pixels` pixels is checked from its header before decoding).
    JPEG and PNG in 8-bit RGB or grayscale, upright, are kept byte for byte; anything
    else that decodes (CMYK JPEG, BMP, GIF, palette or 16-bit PNG, a phone photo
    whose EXIF orientation says it is stored sideways) is re-encoded as upright RGB
    PNG so that TensorFlow's decoders, which ignore EXIF, read every image upright."""
    if not data:
        return UNREADABLE
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > max_pixels or max(image.size) > MAX_SIDE \
                    or max(image.size) > MAX_ASPECT * max(1, min(image.size)):
                return TOO_MANY_PIXELS
            image.load()  # raises on truncated or corrupt data
            upright = image.getexif().get(EXIF_ORIENTATION, 1) == 1
            if upright and image.format in ("JPEG", "PNG") and image.mode in ("RGB", "L"):
                return data, image.format
            buffer = io.BytesIO()
            _to_rgb(ImageOps.exif_transpose(image)).save(buffer, format="PNG")
            return buffer.getvalue(), "PNG"
    except Exception:  # PIL raises many types for broken files (DecompressionBombError included)
        return UNREADABLE


class LabelledImage(NamedTuple):
    split: str    # the source split: train, or test where the folder has split directories
    name: str     # the path inside the folder or archive: the example id
    data: bytes   # JPEG or PNG bytes (see _clean_image)
    format: str
    label: int


class ImageFolder:
    """The images of `dataset` in the folder or archive at `path`. Construction
    checks the layout and the class folders; iterating yields the usable images in
    a stable order, records undecodable ones in `skipped`, and ends with a
    DataError when fewer than two classes had usable images."""

    def __init__(self, dataset: str, path: str | Path, limits: ReadLimits = ReadLimits()):
        path = Path(path)
        self.limits = limits
        if not path.exists():
            raise DataError(f"data path {path} does not exist. Fix: set data.paths.{dataset} to an image folder "
                            f"or archive (`dvc exp run -S data.paths.{dataset}=/data/{dataset}.tar.gz`), or download "
                            "it from tfds where there is a network (`dvc exp run -S data.source=tfds`).")
        names = [name for name, _ in _iter_files(path, limits.max_file_bytes)]
        images = [name for name in names if _is_image(name)]
        if not images:
            raise DataError(f"{path} holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}). Fix: point "
                            f"data.paths.{dataset} at a folder laid out as <class>/<image> or <split>/<class>/<image>.")
        self._skip, self._has_splits, strays = _layout(images)
        self._class_index = self._skip + 1 if self._has_splits else self._skip
        strays = set(strays)
        folder_classes = sorted({name.split("/")[self._class_index] for name in images if name not in strays})
        known = class_names(dataset)
        by_case = {}
        for name in folder_classes:
            by_case.setdefault(name.lower(), []).append(name)
        if twins := [names for names in by_case.values() if len(names) > 1]:
            raise DataError(f"class folders {twins[0]} in {path} differ only in case, and classes are matched "
                            "case-insensitively. Fix: merge them into one folder.")
        if known is None:
            self.classes = folder_classes
        else:
            self.classes = known
            lower = {c.lower() for c in known}
            strangers = [c for c in folder_classes if c.lower() not in lower]
            if strangers:
                raise DataError(f"class folder(s) {strangers} in {path} do not belong to {dataset} (classes: "
                                f"{', '.join(known)}). Fix: rename or remove them, or use another dataset name.")
        self.dataset, self.path = dataset, path
        # Files read as nothing: not an image type, or outside the class folders.
        self.ignored = sorted({name for name in names if not _is_image(name)} | strays)
        self.skipped: list[str] = []
        self.skip_reasons: Counter = Counter()
        # Image files per split before decoding (what --dry-run plans with).
        self.listed = Counter(name.split("/")[self._skip].lower() if self._has_splits else "train"
                              for name in images if name not in strays)

    def __iter__(self) -> Iterator[LabelledImage]:
        label_of = {c.lower(): i for i, c in enumerate(self.classes)}
        ignored, labels = set(self.ignored), Counter()
        progress = Progress(f"read {self.dataset} from {self.path.name}")
        self.skipped, self.skip_reasons = [], Counter()
        for name, read in _iter_files(self.path, self.limits.max_file_bytes):
            if name in ignored or not _is_image(name):
                continue
            parts = name.split("/")
            cleaned = read.reason if isinstance(read, _Unread) else _clean_image(read(), self.limits.max_pixels)
            progress.step()
            if isinstance(cleaned, str):
                self.skipped.append(name)
                self.skip_reasons[cleaned] += 1
                continue
            label = label_of[parts[self._class_index].lower()]
            labels[label] += 1
            yield LabelledImage(parts[self._skip].lower() if self._has_splits else "train", name, *cleaned, label)
        progress.done()
        if not labels:
            why = "; ".join(f"{count:,} {reason}" for reason, count in self.skip_reasons.most_common())
            fix = (f"raise data.max_file_mb (now {self.limits.max_file_bytes / 2**20:g})" if TOO_LARGE in
                   self.skip_reasons else "check the archive is complete and holds images")
            raise DataError(f"no usable image in {self.path} ({why}). Fix: {fix}.")
        if len(labels) < 2:
            found = [self.classes[label] for label in labels]
            raise DataError(f"{self.path} has usable images of {len(labels)} class ({', '.join(found)}); a "
                            f"classifier needs at least 2 (expected: {', '.join(self.classes)}). "
                            "Fix: add a folder of images per class.")
