"""Near-copies kept on one side of the split: the same creative resized, recompressed,
re-encoded or slightly cropped is a different file with a different sha256, and would
otherwise land on both sides, so that validation measures memory.

Each usable image gets a perceptual key in check-images: the 64-bit pHash of `imagehash` (the
maintained library for perceptual hashes; pHash, a DCT of the 32x32 grey image, is the one of
its hashes that survives rescaling and JPEG recompression best) of the whole image and of its
centre at CROPS of its width and height, since pHash alone does not survive a crop. Two images
are near-copies when any key of one is within MAX_DISTANCE bits of any key of the other;
near-copies of near-copies form one group (union-find).

A group's split is its anchor's own split (by content hash, as for every image), the anchor
being the member with the smallest sha256: which member that is does not depend on the split
draw, so a group lands in validation with the same chance, val_fraction, whatever its size (a
rule such as "train if any member is" would send almost every group of five to train). A new
image that joins a group takes the group's split, unless its sha256 is smaller than every
member's (a chance of 1 in the group's new size): then it is the new anchor, and the group is
drawn again from it, so it stays where it was about two times in three (0.8^2 + 0.2^2 with the
method's fractions). Images that are near-copies of nothing never move.

Finding the pairs compares every key with every other (numpy, in blocks): exact, about 160
million comparisons a second on the 2-core development VM (docs/scaling.md), so seconds at
20,000 images; it is the split's one step whose work grows with the square of the data.
"""

import numpy as np

# On 400 demo creatives in five versions each (bench/near_copies.py: itself, resized, JPEG
# recompressed, re-encoded as PNG, 4% cropped), these keys and 8 bits put every creative's
# versions in one group; the whole image's key alone at 10 bits left 38 creatives split.
CROPS = (1.0, 0.94, 0.88)
MAX_DISTANCE = 8
BLOCK = 2048  # keys compared at once against all others: BLOCK x n comparisons in memory


# A flat image (a solid colour, a faint gradient) has no structure for pHash to describe: its
# bits are noise, equal for every flat image whatever its colour. Such images get no key and
# are never grouped (identical files still are, as duplicates).
FLAT_BELOW = 2.0  # standard deviation of the 32x32 grey image, in grey levels


def key_of(image) -> str:
    """The perceptual keys of a normalised RGB image (a PIL image), one per CROPS, as 16 hex
    digits each, space-separated; '' for a flat image."""
    import imagehash

    grey = image.convert("L").resize((32, 32))
    if np.asarray(grey, dtype=np.float32).std() < FLAT_BELOW:
        return ""
    width, height = image.size
    keys = []
    for share in CROPS:
        dx, dy = int(width * (1 - share) / 2), int(height * (1 - share) / 2)
        keys.append(str(imagehash.phash(image.crop((dx, dy, width - dx, height - dy)))))
    return " ".join(keys)


def groups(keys: list[str], max_distance: int = MAX_DISTANCE) -> np.ndarray:
    """The group of each image of `keys` (its key_of): the smallest index of the images linked
    to it through keys at most `max_distance` bits apart (its own index when it has no
    near-copy)."""
    split_keys = [k.split() for k in keys]
    values = np.array([int(k, 16) for ks in split_keys for k in ks], dtype=np.uint64)
    owner = np.repeat(np.arange(len(keys)), [len(ks) for ks in split_keys])
    parent = np.arange(len(keys))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for start in range(0, len(values), BLOCK):
        block = values[start:start + BLOCK]
        distances = np.bitwise_count(block[:, None] ^ values[None, start:])
        for i, j in zip(*np.nonzero(distances <= max_distance), strict=True):
            a, b = root(owner[start + i]), root(owner[start + j])
            if a != b:
                parent[max(a, b)] = min(a, b)
    return np.array([root(i) for i in range(len(keys))])


def group_splits(sha256s: list[str], keys: list[str], own_splits: list[str]
                 ) -> tuple[dict[str, str], list[list[int]]]:
    """(sha256 -> the split of its group, for images in a group of two or more; the groups
    as lists of positions): each group in its anchor's own split, the anchor being the member
    with the smallest sha256."""
    members: dict[int, list[int]] = {}
    for position, group in enumerate(groups(keys)):
        members.setdefault(int(group), []).append(position)
    splits, listed = {}, []
    for positions in members.values():
        if len(positions) < 2:
            continue
        anchor = min(positions, key=lambda p: sha256s[p])
        splits.update({sha256s[p]: own_splits[anchor] for p in positions})
        listed.append(positions)
    return splits, listed
