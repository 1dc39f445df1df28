from typing import List


def list_images(data_root: str, split_workers: int) -> List[str]:
    """The split's first stage, on CPU, never cached: every file under data_root's class
    folders listed (paginated on gs://) into split_workers partitions by a hash of its name.
    Returns one key per partition, '<partition>:<fingerprint of its files' names, sizes and
    versions>', which the check-images tasks fan out over and are cached by."""
    values = dict(locals())  # first: this component's parameters, nothing else yet
    from admod import logs, options, split_tasks
    from admod.errors import exit_on_user_error

    logs.setup()
    listing = exit_on_user_error(options.from_parameters, values, options.ListingOptions,
                                 inputs=("data_root",))
    return exit_on_user_error(split_tasks.list_images_step, data_root=data_root,
                              partitions=listing.split_workers)
