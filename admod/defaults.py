"""The method's constants that are not pipeline parameters (shared/DESIGN.md).

Every pipeline parameter's default lives with its rule and description in its step's options
(admod.options). Pure Python on purpose: the pipeline definition imports it, and compiling must
not need TensorFlow.
"""

CLASS_NAMES = ("allowed_ads", "not_allowed_ads")  # index = label; positive class = not allowed
POSITIVE_CLASS = CLASS_NAMES[1]

# The method's head on the ResNet50 base
HEAD_UNITS = (512, 256)
HEAD_DROPOUTS = (0.5, 0.3)

# ReduceLROnPlateau's floor
MIN_LEARNING_RATE = 1e-7

# The method's decision threshold; always reported beside the operating one
DECISION_THRESHOLD = 0.5

# Serving: the exported SavedModel is checked through TF Serving's loader under TensorFlow 2.15.1
# (`make test-tf-serving`) and the training TensorFlow. KServe runs tensorflow/serving:<this>.
TF_SERVING_VERSION = "2.15.1"

# Where things go in a local run
LOCAL_PIPELINE_ROOT = "runs"
LOCAL_REGISTRY_ROOT = "models"
LOCAL_DEMO_DATA = "data/demo"
LOCAL_IMAGE = "admod/trainer:local-cpu"  # what `make image-local` builds: --runner docker's

# Vertex AI's prebuilt TensorFlow serving container for the model versions push adds.
VERTEX_SERVING_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"

# The split's buckets by content-hash prefix: fixed, so that the shards are the same for any
# number of parts or merge processes (more buckets than a merge pod has CPUs leaves none idle).
# The DAG fans the merge out over them.
SPLIT_BUCKETS = 16
