"""Bakes ResNet50's no-top weights into the trainer image at a fixed path.

    python bake_weights.py download|stand-in PATH

download  Keras's own loader fetches the ImageNet file, checks it against the hash Keras
          publishes for it, and the file is moved to PATH. What the cloud build does.
stand-in  a randomly initialised ResNet50 no-top in the same legacy HDF5 format, for builds that
          cannot reach the weights' host (this project's machines). PATH.source says so, and
          every model trained from it records that as its weights' source.

PATH.source names what the file is; admod.model reads it.
"""

import os
import shutil
import sys
import tempfile

FILE_NAME = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
STAND_IN = "stand-in: random initialisation baked by a local build (no ImageNet weights)"


def download(path: str) -> str:
    with tempfile.TemporaryDirectory() as keras_home:
        os.environ["KERAS_HOME"] = keras_home  # read when keras is imported
        import keras

        keras.applications.ResNet50(include_top=False, weights="imagenet")
        shutil.move(os.path.join(keras_home, "models", FILE_NAME), path)
    return "imagenet"


def stand_in(path: str) -> str:
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(0)
    base = keras.applications.ResNet50(include_top=False, weights=None)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, base)
    return STAND_IN


def main(mode: str, path: str) -> None:
    bakers = {"download": download, "stand-in": stand_in}
    if mode not in bakers:
        sys.exit(f"IMAGENET_WEIGHTS='{mode}' is unknown: use download or stand-in.")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    source = bakers[mode](path)
    with open(path + ".source", "w") as f:
        f.write(source + "\n")
    print(f"baked {path} ({os.path.getsize(path)} bytes): {source}")


if __name__ == "__main__":
    main(*sys.argv[1:])
