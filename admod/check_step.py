"""The pipeline's first step, check-parameters: on a CPU, in a second, before any GPU starts.
It imports neither TensorFlow nor pandas, so a mistake costs the run no more than that.
"""

import logging

from admod import options, reachable, storage

log = logging.getLogger(__name__)


def check_parameters_step(values: dict, checked_path: str | None = None,
                          pipeline_root: str = "") -> None:
    """Every parameter in range, a weights file that exists and, in a run (`pipeline_root`:
    where this step's outputs go), the data, registry and pipeline roots reachable from the pod.
    The values go to `checked_path` (JSON), for the run's record."""
    options.require_valid(values)
    reachable.require_weights_file(values.get("weights", "imagenet"))
    log.info("all %d parameters are in range", len(values))
    if pipeline_root:
        reachable.check_stores(values["data_root"], values["registry_root"], pipeline_root)
        log.info("data root read, registry and pipeline roots written from this pod")
    if checked_path:
        storage.write_json_file(checked_path, values)
