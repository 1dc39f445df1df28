"""admod: the ad-moderation pipeline.

The modules of this folder are the logic, with no KFP imports: storage, images, split, model,
training, evaluation, registry, ... . The KFP layers are installed into the same package from
their own folders: admod.components (components/) and admod.pipeline (pipeline/).
"""

import os

# Quiet TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
