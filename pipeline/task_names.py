"""The pipeline's task and output names, in one place: the DAG names its tasks with these, and
the platform policy, the local run's log reader and its summary find them by these.

A task's name is its component's function name with dashes (KFP's rule); an output's name is
the component's parameter name.
"""

CHECK_PARAMETERS = "check-parameters"
LIST_IMAGES = "list-images"
CHECK_IMAGES = "check-images"
GATHER_PARTS = "gather-parts"
MERGE_BUCKET = "merge-bucket"
SPLIT = "split"
SPLIT_IN_ONE_TASK = "split-in-one-task"
TRAIN_HEAD = "train-head"
FINE_TUNE = "fine-tune"
EVALUATE = "evaluate"
PUSH = "push"
LOG_EXPERIMENT = "log-experiment"

# Outputs read by name outside their component
MODEL = "model"  # train-head, fine-tune: the model folder
METRICS = "metrics"  # split (counts), train-head and fine-tune (figures), evaluate (the result)
REPORT = "report"  # split (Markdown), train-head, fine-tune and evaluate (HTML)
MANIFEST = "manifest"  # split: one CSV row per image
PART = "part"  # check-images: a checked partition
MERGED = "merged"  # merge-bucket: a bucket's shards
PUBLISHED = "published"  # push: the registry version
DECISION = "Output"  # evaluate's return value: blessed or not
