"""admod: the logic behind the ad-moderation pipeline (no KFP imports here)."""

import os

# Quiet TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
