from typing import List

from kfp.dsl import Dataset, Output


def list_images(data_root: str, split_workers: int, listing: Output[Dataset]) -> List[int]:
    """The split's first stage, on CPU: every file under data_root's class folders, streamed
    into split_workers listing parts (paginated on gs://). Returns the parts' numbers, which
    the check-images tasks fan out over."""
    from admod import logs, steps
    from admod.errors import exit_on_user_error

    logs.setup()
    return exit_on_user_error(steps.list_images_step, data_root=data_root,
                              listing_dir=listing.path, partitions=split_workers)
