from kfp.dsl import Dataset, Output


def check_images(data_root: str, partition: str, split_workers: int, min_image_side: int,
                 max_image_pixels: int, part: Output[Dataset]) -> str:
    """One partition of the split ('<partition>:<fingerprint>' from list-images): each of its
    files checked (format, size, pixels, orientation, colour), its usable images written into
    16 buckets by content hash (TFRecord shards, in listing order within each). Cached while
    the partition's files are unchanged. Returns the part's uri, for the merge-bucket tasks."""
    values = dict(locals())  # first: this component's parameters, nothing else yet
    from admod import logs, options, split_tasks
    from admod.errors import exit_on_user_error

    logs.setup()
    listing, rules = exit_on_user_error(options.from_parameters, values, options.ListingOptions,
                                        options.ImageRules, inputs=("data_root", "partition"))
    count = exit_on_user_error(split_tasks.check_images_step, data_root=data_root,
                               partition_key=partition, partitions=listing.split_workers,
                               part_dir=part.path, rules=rules)
    part.metadata["checked"] = count
    return part.uri
