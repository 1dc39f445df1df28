from kfp.dsl import Dataset, Input, Output


def check_images(listing: Input[Dataset], partition: int, min_image_side: int,
                 max_image_pixels: int, part: Output[Dataset]):
    """One partition of the split: each of its files checked (format, size, pixels,
    orientation, colour), its usable images written to TFRecord shards in listing order."""
    values = dict(locals())  # first: this component's parameters, nothing else yet
    from admod import logs, parameters, split, steps
    from admod.errors import exit_on_user_error

    logs.setup()
    count = exit_on_user_error(steps.check_images_step, listing_dir=listing.path,
                               partition=partition, part_dir=part.path,
                               config=parameters.options(split.SplitConfig, values))
    part.metadata["checked"] = count
