"""The tf.data input pipeline of training and evaluation: the examples of one
split decoded and cached, seeded per-epoch shuffling and augmentation (exact on
resume), batches, and the pixel sums behind the normalization."""
from __future__ import annotations

import functools
import math
import os
import sys

import numpy as np
import tensorflow as tf

from ablation.data.shards import read_records
from ablation.data.splitting import read_manifest

AUTOTUNE = tf.data.AUTOTUNE


PAD = 4  # the paper's CIFAR augmentation: pad 4 pixels, random 32x32 crop, flip


def decode_square(image_bytes: tf.Tensor, size: int) -> tf.Tensor:
    """Decodes any stored image to uint8 size x size x 3: the shorter side is resized
    to `size` (aspect kept), then the centre square is cropped, so photos are
    never squashed."""
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    shape = tf.shape(image)[:2]

    def resized():
        scale = tf.cast(size, tf.float32) / tf.cast(tf.reduce_min(shape), tf.float32)
        new_shape = tf.cast(tf.math.ceil(tf.cast(shape, tf.float32) * scale), tf.int32)
        square = tf.image.resize_with_crop_or_pad(tf.image.resize(image, new_shape, antialias=True), size, size)
        return tf.cast(tf.clip_by_value(tf.round(square), 0, 255), tf.uint8)

    # Images already at the target size (CIFAR at 32) skip the resize.
    return tf.ensure_shape(tf.cond(tf.reduce_all(shape == size), lambda: image, resized), [size, size, 3])


def load_split(fetched_dir, split_dir, split_name: str, size: int) -> tuple[tf.data.Dataset, list]:
    """The decoded examples of one split as a cached dataset of (id, image uint8, label),
    in shard order, and the split's manifest rows."""
    rows = read_manifest(split_dir)[split_name]
    if not rows:
        return None, rows
    order = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant([i for i, _ in rows]), tf.range(len(rows), dtype=tf.int64)),
        default_value=-1)
    dataset = read_records(fetched_dir).filter(lambda e: order.lookup(e["id"]) >= 0)
    dataset = dataset.map(lambda e: (e["id"], decode_square(e["image"], size), e["label"]),
                          num_parallel_calls=AUTOTUNE, deterministic=True)
    # Cache the decoded split in memory when it fits in a quarter of the machine's
    # memory: decoding is the costly part of an epoch. Otherwise decode every epoch.
    decoded_bytes = len(rows) * size * size * 3
    if decoded_bytes > os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 4:
        print(f"{split_name} split: {decoded_bytes / 2**30:.1f} GiB decoded does not fit in memory; "
              "decoding every epoch", file=sys.stderr)
        return dataset, rows
    return dataset.cache(), rows


def _pad_crop_flip(image: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    """The paper's CIFAR augmentation: zero-pad 4 pixels, a random crop back, a random flip."""
    size = image.shape[0]
    image = tf.pad(image, [[PAD, PAD], [PAD, PAD], [0, 0]])
    image = tf.image.stateless_random_crop(image, [size, size, 3], seed=seeds[0])
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[2])


def _resized_crop_flip(image: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    """For photos: a crop of 35-100% of the area, aspect 3/4-4/3, resized back; a random flip."""
    size = image.shape[0]
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seeds[1],
        min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.35, 1.0),
        use_image_if_no_bounding_boxes=True)
    image = tf.slice(image, begin, crop_size)
    image = tf.cast(tf.image.resize(image, [size, size], antialias=True), tf.uint8)
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[2])


# `data.augment`'s choices: params' knob allows exactly these keys (knobs.key_of).
AUGMENTATIONS = {
    "none": lambda image, seeds: image,
    "pad_crop_flip": _pad_crop_flip,
    "resized_crop_flip": _resized_crop_flip,
}


def augment(image: tf.Tensor, policy: str, seed: tf.Tensor) -> tf.Tensor:
    """Stateless random augmentation: the same (seed, epoch, index) gives the same
    image, so a resumed training sees exactly the batches it would have seen."""
    # One split into three seeds for every policy (crop, bounding box, flip), so each
    # random op keeps its seed whichever policy uses it.
    return AUGMENTATIONS[policy](image, tf.random.experimental.stateless_split(seed, 3))


def training_batches(cached: tf.data.Dataset, count: int, batch_size: int, policy: str,
                     seed: int, first_epoch: int, epochs: int, threads: int = 0) -> tf.data.Dataset:
    """Batches for epochs [first_epoch, epochs): each epoch is a full-split shuffle
    and augmentation seeded by (seed, epoch), so resuming at any epoch is exact."""
    pairs = cached.map(lambda _, image, label: (image, label))

    def one_epoch(epoch: int) -> tf.data.Dataset:
        # A Python-int seed per epoch: tf.data's shuffle takes no tensor seed, and
        # a reshuffling iterator could not be restarted mid-way on resume.
        shuffled = pairs.shuffle(count, seed=seed * 100_003 + epoch, reshuffle_each_iteration=False)

        def augment_indexed(index, pair):
            image, label = pair
            return augment(image, policy, tf.stack([tf.constant(seed, tf.int64), epoch * count + index])), label

        return shuffled.enumerate().map(augment_indexed, num_parallel_calls=AUTOTUNE,
                                        deterministic=True).batch(batch_size)

    epochs_ds = functools.reduce(tf.data.Dataset.concatenate, (one_epoch(e) for e in range(first_epoch, epochs)))
    # A known length lets Keras stop at the last batch instead of running into the
    # end of the data (its "input ran out of data" warning).
    epochs_ds = epochs_ds.apply(tf.data.experimental.assert_cardinality(
        (epochs - first_epoch) * math.ceil(count / batch_size)))
    if threads:
        options = tf.data.Options()
        options.threading.private_threadpool_size = threads
        epochs_ds = epochs_ds.with_options(options)
    return epochs_ds.prefetch(AUTOTUNE)


def evaluation_batches(cached: tf.data.Dataset, count: int, batch_size: int) -> tf.data.Dataset:
    batches = cached.map(lambda _, image, label: (image, label)).batch(batch_size)
    return batches.apply(tf.data.experimental.assert_cardinality(math.ceil(count / batch_size))).prefetch(AUTOTUNE)


def pixel_sums(cached: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray, int]:
    """Sums over the whole training split of the pixels (HxWxC) and of the squared
    pixels per channel, and the image count: recipe.pixel_moments turns them into
    the normalization's statistics. The whole split, streamed: the cache is in
    class order, so any prefix of it would be biased towards the first classes."""
    images = cached.map(lambda _, image, __: tf.cast(image, tf.float64)).batch(2000)
    total, total_sq, count = 0.0, 0.0, 0
    for batch in images:
        total += tf.reduce_sum(batch, axis=0).numpy()
        total_sq += tf.reduce_sum(tf.square(batch), axis=(0, 1, 2)).numpy()
        count += int(batch.shape[0])
    return total, total_sq, count
