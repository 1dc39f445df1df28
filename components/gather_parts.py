from typing import List

from kfp.dsl import Artifact, Output


def gather_parts(parts: List[str], gathered: Output[Artifact]):
    """The checked partitions' uris (check-images' returns, collected) as one small JSON
    artifact, which every merge-bucket task takes: a list the second fan-out can read."""
    import json

    with open(gathered.path, "w") as f:
        json.dump(parts, f)
    gathered.metadata["parts"] = len(parts)
