"""The method's values (shared/DESIGN.md): the one source of truth for every default.

Pure Python on purpose: the pipeline definition imports it, and compiling must not need
TensorFlow.
"""

CLASS_NAMES = ("allowed_ads", "not_allowed_ads")  # index = label; positive class = not allowed
POSITIVE_CLASS = CLASS_NAMES[1]

# Split
VAL_FRACTION = 0.2
TEST_FRACTION = 0.0
SEED = 42
MIN_IMAGE_SIDE = 32
MAX_IMAGE_PIXELS = 50_000_000
SPLIT_WORKERS = 1  # parallel tasks checking the images (the pipeline's fan-out)

# Input
IMAGE_SIZE = 224
BATCH_SIZE = 32

# Augmentation (training only). Shear is in degrees here; see README "Augmentation".
ROTATION_DEGREES = 30.0
WIDTH_SHIFT = 0.2
HEIGHT_SHIFT = 0.2
SHEAR_DEGREES = 0.2
ZOOM = 0.2
HORIZONTAL_FLIP = True

# Model
WEIGHTS = "imagenet"  # "imagenet" | "none" | a local path or gs:// URI of a weights file
# Train from random weights when ImageNet's cannot be had (the local profile turns this on)
ALLOW_RANDOM_INIT = False
REQUIRE_GPU = True  # GPU steps fail at once without a GPU (the local run turns this off)
HEAD_UNITS = (512, 256)
HEAD_DROPOUTS = (0.5, 0.3)

# Phase 1: head
HEAD_EPOCHS = 15
HEAD_LEARNING_RATE = 1e-3

# Phase 2: fine-tune
FINE_TUNE_EPOCHS = 30
FINE_TUNE_LEARNING_RATE = 1e-5
UNFREEZE = "all"  # or the first residual block to unfreeze, e.g. "conv5_block1"

# Accelerators: used only when a GPU is present
MIXED_PRECISION = True
XLA = True

# Preemption: a folder or gs:// prefix where each training phase mirrors its state every epoch
# ("" = only under the step's own output folder).
CHECKPOINT_ROOT = ""

# Callbacks
EARLY_STOPPING_PATIENCE = 5
REDUCE_LR_PATIENCE = 3
REDUCE_LR_FACTOR = 0.2
MIN_LEARNING_RATE = 1e-7

# Class weights: "auto" weights inversely to frequency when the minority share is under
# CLASS_WEIGHT_MINORITY_SHARE; "balanced" always does; "none" never does.
CLASS_WEIGHTINGS = ("auto", "balanced", "none")
CLASS_WEIGHTING = "auto"
CLASS_WEIGHT_MINORITY_SHARE = 0.4

# Operating threshold, chosen on validation: "fixed" (= THRESHOLD_TARGET), "min_precision"
# (precision for not allowed >= target, best recall), "min_recall", "max_f1".
THRESHOLD_RULES = ("fixed", "min_precision", "min_recall", "max_f1")
DECISION_THRESHOLD = 0.5  # the method's; always reported too
THRESHOLD_RULE = "min_precision"
THRESHOLD_TARGET = 0.9

# Blessing: value thresholds (0 disables one) and the change threshold against the champion.
MIN_ACCURACY = 0.85
MIN_AUC = 0.9
MIN_PRECISION = 0.0
MIN_RECALL = 0.0
GATING_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc")
GATING_METRIC = "roc_auc"
MAX_REGRESSION = 0.005

# Serving: the exported SavedModel is checked through TF Serving's loader under TensorFlow 2.15.1
# (`make test-tf-serving`) and the training TensorFlow. KServe runs tensorflow/serving:<this>.
TF_SERVING_VERSION = "2.15.1"

# Vertex AI (all off while empty): push mirrors each version into this Model Registry model (a
# display name, or projects/P/locations/L/models/ID), served by the prebuilt TensorFlow CPU
# image: TF Serving on TensorFlow 2.15, the version the export is checked on; runs are logged to
# this Experiment.
VERTEX_MODEL = ""
VERTEX_PROJECT = ""
VERTEX_LOCATION = ""
VERTEX_SERVING_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
VERTEX_DEFAULT_ALIAS = False
EXPERIMENT = ""
VERTEX_TENSORBOARD = ""

# Where things go in a local run
LOCAL_PIPELINE_ROOT = "runs"
LOCAL_REGISTRY_ROOT = "models"
LOCAL_DEMO_DATA = "data/demo"
