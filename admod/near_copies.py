"""Near-copies kept on one side of the split: the same creative resized, recompressed,
re-encoded or slightly cropped is a different file with a different sha256, and would
otherwise land on both sides, so that validation measures memory.

Each usable image gets a perceptual key in check-images: pHash (the DCT of the 32x32 grey image,
its 8x8 lowest frequencies against their median: 64 bits), the perceptual hash that survives
rescaling and JPEG recompression best, as the maintained `imagehash` library defines it (a test
checks the bits equal `imagehash.phash`'s on the same pixels). It is computed here in numpy on
one small grey sample of the image, for the whole image and its centre at CROPS of its width and
height (pHash alone does not survive a crop): calling the library three times on the image cost
the check 1.2 ms an image, more than the split's floor allows (docs/benchmarks.md). Two images
are near-copies when any key of one is within MAX_DISTANCE bits of any key of the other;
near-copies of near-copies form one group (connected components).

A group's split is its anchor's own split (by content hash, as for every image), the anchor
being the member with the smallest sha256: which member that is does not depend on the split
draw, so a group lands in validation with the same chance, val_fraction, whatever its size (a
rule such as "train if any member is" would send almost every group of five to train). A new
image that joins a group takes the group's split, unless its sha256 is smaller than every
member's (a chance of 1 in the group's new size): then it is the new anchor, and the group is
drawn again from it, so it stays where it was about two times in three (0.8^2 + 0.2^2 with the
method's fractions). Images that are near-copies of nothing never move.

Finding the pairs (multi-index hashing, `groups`) is exact and compares only keys that share
one of nine pieces: measured in docs/scaling.md.
"""

import numpy as np

# On 400 demo creatives in five versions each (bench/near_copies.py: itself, resized, JPEG
# recompressed, re-encoded as PNG, 4% cropped), these keys and 8 bits put every creative's
# versions in one group; the whole image's key alone at 10 bits left 38 creatives split.
CROPS = (1.0, 0.94, 0.88)
MAX_DISTANCE = 8
BLOCK = 256  # keys compared at once against all others: 8 x BLOCK x n bytes in memory
SAMPLE_SIDE = 96  # each of pHash's 32x32 cells the mean of 3x3 samples


# A flat image (a solid colour, a faint gradient) has no structure for pHash to describe: its
# bits are noise, equal for every flat image whatever its colour. Such images get no key and
# are never grouped (identical files still are, as duplicates).
FLAT_BELOW = 2.0  # standard deviation of the grey sample, in grey levels


def keys_of(samples: list[bytes]) -> list[str]:
    """The perceptual keys of images, each from its SAMPLE_SIDE square grey upright sample
    (images.grey_sample: a nearest-neighbour sample, since a pass over every pixel cost the
    check a quarter of its decode): one per CROPS, as 16 hex digits each, space-separated; ''
    for a flat image. Each is the pHash of the crop box-resized to 32x32, both linear maps
    folded into one small matrix per crop (`_LOW_FREQUENCIES`). In batches: one image at a
    time, numpy's calls cost the check three times their arithmetic."""
    if not samples:
        return []
    grey = np.frombuffer(b"".join(samples), np.uint8).reshape(
        len(samples), SAMPLE_SIDE, SAMPLE_SIDE).astype(np.float32)
    pixels = grey.reshape(len(samples), -1)
    mean = pixels.mean(axis=1)
    flat = np.einsum("ij,ij->i", pixels, pixels) / pixels.shape[1] - mean ** 2 < FLAT_BELOW ** 2
    low = _LOW_FREQUENCIES @ grey[:, None] @ _LOW_FREQUENCIES_T  # each image's crops' 8x8
    bits = _bits(low.reshape(-1, 64))
    digits = np.packbits(bits, axis=1).reshape(len(samples), len(CROPS), 8)
    return ["" if is_flat else " ".join(key.tobytes().hex() for key in keys)
            for keys, is_flat in zip(digits, flat, strict=True)]


_N = np.arange(32)
_DCT = np.cos(np.pi * (2 * _N[None, :] + 1) * _N[:, None] / 64)  # DCT-II, as scipy's, unscaled


def _box_resize_matrix(size: int, out: int = 32) -> np.ndarray:
    """(out x size): each output pixel the mean of the input pixels it covers (in part)."""
    edges = np.linspace(0, size, out + 1)
    low, high = np.arange(size), np.arange(1, size + 1)
    cover = np.clip(np.minimum(high[None, :], edges[1:, None])
                    - np.maximum(low[None, :], edges[:-1, None]), 0, None)
    return cover / cover.sum(axis=1, keepdims=True)


def _low_frequencies(share: float) -> np.ndarray:
    """(8 x SAMPLE_SIDE): the 8 lowest DCT frequencies of the centre `share` of a side of the
    sample box-resized to 32 (zero outside the crop), so that low @ grey @ low.T is the crop's
    8x8."""
    cut = int(SAMPLE_SIDE * (1 - share) / 2)
    folded = np.zeros((8, SAMPLE_SIDE))
    folded[:, cut:SAMPLE_SIDE - cut] = (_DCT @ _box_resize_matrix(SAMPLE_SIDE - 2 * cut))[:8]
    return folded


_LOW_FREQUENCIES = np.stack([_low_frequencies(share) for share in CROPS]).astype(np.float32)
_LOW_FREQUENCIES_T = np.ascontiguousarray(_LOW_FREQUENCIES.transpose(0, 2, 1))


def phash_hex(pixels: np.ndarray) -> str:
    """imagehash.phash's 64 bits of 32x32 grey `pixels`, as its str() writes them."""
    bits = _bits((_DCT @ pixels @ _DCT.T)[:8, :8].reshape(1, 64))
    return np.packbits(bits, axis=1)[0].tobytes().hex()


def _bits(low: np.ndarray) -> np.ndarray:
    """Each row's 64 frequencies against their median (np.median is slower on so few)."""
    ordered = np.sort(low, axis=1)
    return low > (ordered[:, 31:32] + ordered[:, 32:33]) / 2


def groups(keys: list[str], max_distance: int = MAX_DISTANCE) -> np.ndarray:
    """The group of each image of `keys` (its key_of): the smallest index of the images linked
    to it through keys at most `max_distance` bits apart (its own index when it has no
    near-copy): the connected components of the graph of near pairs (scipy.sparse.csgraph).

    Multi-index hashing: cut into max_distance + 1 pieces, two keys that differ in at most
    max_distance bits are equal in at least one piece, so only keys equal in a piece are
    compared (exact, and a few hundredths of the work of comparing every pair)."""
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import connected_components

    values = np.frombuffer(bytes.fromhex(" ".join(keys)), dtype=">u8").astype(np.uint64)
    owner = np.repeat(np.arange(len(keys)), [(len(k) + 1) // 17 for k in keys])  # 16 digits, " "
    whole = np.r_[True, owner[1:] != owner[:-1]] if len(owner) else owner.astype(bool)
    # Equal keys (templates, a creative stored many times) are linked once, through their
    # first holder: comparing them pairwise would take the square of their number.
    distinct, first, which = np.unique(values, return_index=True, return_inverse=True)
    holder = owner[first]
    any_whole = np.zeros(len(distinct), dtype=bool)
    np.logical_or.at(any_whole, which, whole)
    pairs = np.concatenate([np.stack([owner, holder[which]], axis=1),
                            _close_pairs(distinct, holder, any_whole, max_distance)])
    graph = coo_array((np.ones(len(pairs), dtype=bool), (pairs[:, 0], pairs[:, 1])),
                      shape=(len(keys), len(keys)))
    _, component = connected_components(graph, directed=False)
    smallest = np.full(len(keys), len(keys))
    np.minimum.at(smallest, component, np.arange(len(keys)))
    return smallest[component]


def _close_pairs(values: np.ndarray, owner: np.ndarray, whole: np.ndarray,
                 max_distance: int) -> np.ndarray:
    """The (owner, owner) pairs (some twice, some of an image with itself) where one's
    whole-image key (`whole`) is at most `max_distance` bits from any key of the other: a
    crop's whole key meets the original's centre keys, so the centre keys need not be compared
    with each other."""
    found = [np.empty((0, 2), dtype=np.int64)]
    edges = np.linspace(0, 64, max_distance + 2).astype(int)
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        piece = (values >> np.uint64(low)) & np.uint64((1 << (high - low)) - 1)
        order = np.argsort(piece, kind="stable")
        for block in np.split(order, np.flatnonzero(np.diff(piece[order])) + 1):
            wholes = block[whole[block]]
            for start in range(0, len(wholes), BLOCK):  # an equal piece shared by many keys
                rows = wholes[start:start + BLOCK]
                close = np.bitwise_count(values[rows, None] ^ values[None, block]) <= max_distance
                i, j = np.nonzero(close)
                found.append(np.stack([owner[rows[i]], owner[block[j]]], axis=1))
    return np.concatenate(found)


def group_splits(sha256s: list[str], keys: list[str], own_split
                 ) -> tuple[dict[str, str], list[list[int]]]:
    """(sha256 -> the split of its group, for images in a group of two or more; the groups
    as lists of positions): each group in its anchor's own split (`own_split(sha256)`), the
    anchor being the member with the smallest sha256."""
    members: dict[int, list[int]] = {}
    for position, group in enumerate(groups(keys)):
        members.setdefault(int(group), []).append(position)
    splits, listed = {}, []
    for positions in members.values():
        if len(positions) < 2:
            continue
        anchor = own_split(min(sha256s[p] for p in positions))
        splits.update({sha256s[p]: anchor for p in positions})
        listed.append(positions)
    return splits, listed
