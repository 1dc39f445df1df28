"""Plants each bug a reviewer planted in issue 15 (two in issue 14's Vertex mirror, two in issue
20's serving export, the rest from issue 23's, 25's and 26's promises), runs the tests meant to
catch it, puts the code back, and prints which tests failed: a check that the suite pins those
promises.

    .venv/bin/python tests/plant_bugs.py [LETTER ...]   (default: every bug; time in
                                                         docs/promises.md)

The race mutant (E) runs its test 15 times: it must fail every time. Not collected by pytest.
"""

import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
MUTANTS = [
 ("A misaligned predictions (fixed wrong order)", "admod/steps.py",
  'probabilities = model.predict(ds, verbose=0).ravel().astype(float)',
  "probabilities = np.roll(model.predict(ds, verbose=0).ravel().astype(float), 1)",
  ["tests/admod/test_evaluate_push_steps.py"], "import numpy as np\n"),
 ("B class weights from the validation counts", "admod/steps.py",
  '    info = records.read_info(train_dir)\n    counts = [info["class_counts"][n]',
  '    info = records.read_info(val_dir)\n    counts = [info["class_counts"][n]',
  ["tests/admod/test_training_step.py"], None),
 ("C augmentation on validation", "admod/steps.py",
  'val_ds = datasets.make_dataset(val_dir, image_size, global_batch, training=False)',
  "val_ds = datasets.make_dataset(val_dir, image_size, global_batch, training=True, "
  "augment_config=options.augmentation, seed=1)",
  ["tests/admod/test_training_step.py"], None),
 ("D1 16-bit clipped (Pillow path)", "admod/images.py",
  '(array >> 8).clip(0, 255)', 'array.clip(0, 255)',
  ["tests/admod/test_images.py"], None),
 ("D2 16-bit clipped (TensorFlow path)", "admod/decoding.py",
  "tf.cast(tf.bitwise.right_shift(wide, 8), tf.uint8)", "tf.cast(tf.minimum(wide, 255), tf.uint8)",
  ["tests/admod/test_images.py"], None),
 ("E registry file lock removed", "admod/storage.py",
  '        fcntl.flock(lock, fcntl.LOCK_EX)\n', '',
  ["tests/admod/test_registry.py::"
   "test_two_pushes_racing_leave_one_champion_and_both_versions"], None),
 ("F threshold not exported (0.5 served)", "admod/steps.py",
  'serving.export(model, info.image_size, result.calibration.raw_threshold,',
  'serving.export(model, info.image_size, 0.5,',
  ["tests/admod/test_evaluate_push_steps.py"], None),
 ("G champion check ignored at push", "admod/registry.py",
  '        if found != expected:\n            raise storage.Conflict',
  '        if False:\n            raise storage.Conflict',
  ["tests/admod/test_evaluate_push_steps.py"], None),
 ("H Vertex versions not found by their label (a retry duplicates)", "admod/vertex_registry.py",
  "        return next(iter(listed), None)", "        return None",
  ["tests/admod/test_vertex_registry.py"], None),
 ("I champion alias never set on Vertex", "admod/vertex_registry.py",
  "        if wanted - aliases:", "        if False:",
  ["tests/admod/test_vertex_registry.py"], None),
 ("J export tracks the model too (every weight stored twice)", "admod/serving.py",
  "    archive = keras.export.ExportArchive()\n",
  "    archive = keras.export.ExportArchive()\n    archive.track(model)\n",
  ["tests/admod/test_tf_serving_loader.py"], None),
 ("K label at a fixed 0.5 inside the SavedModel", "admod/serving.py",
  "label = tf.where(raw >= raw_threshold,", "label = tf.where(raw >= 0.5,",
  ["tests/admod/test_tf_serving_loader.py"], None),
 # issue 23: promises kept by the steps a run executes
 ("L not_allowed split with half the validation fraction", "admod/split.py",
  "    return grouped.splits.get(sha256) or assign_split(sha256, options.seed,\n"
  "                                                      options.val_fraction,",
  "    return grouped.splits.get(sha256) or assign_split(sha256, options.seed,\n"
  "                                                      options.val_fraction / 2,",
  ["tests/admod/test_split.py"], None),
 ("M the fine-tune step never unfreezes", "admod/steps.py",
  "        trainable = model_lib.unfreeze(model, unfreeze)", "        trainable = 0",
  ["tests/admod/test_training_step.py"], None),
 ("N training batches (only) scaled by 1/255", "admod/steps.py",
  "                                         cache_dir=cache_dir, drop_remainder=drop_remainder)",
  "                                         cache_dir=cache_dir, drop_remainder=drop_remainder"
  ").map(lambda x, y: (x / 255.0, y))",
  ["tests/admod/test_training_step.py"], None),
 ("O no ReduceLROnPlateau", "admod/training.py",
  "        keras.callbacks.ReduceLROnPlateau(monitor=\"val_loss\", factor=options.reduce_lr_factor,"
  "\n                                          patience=options.reduce_lr_patience,\n"
  "                                          min_lr=options.min_learning_rate, verbose=1),\n", "",
  ["tests/admod/test_training_step.py"], None),
 ("P1 a score at its minimum not blessed (> for >=)", "admod/blessing.py",
  "        ok = scores[name] >= limit", "        ok = scores[name] > limit",
  ["tests/admod/test_blessing.py"], None),
 ("P2 a challenger at the champion's floor not blessed", "admod/blessing.py",
  "        ok = scores[metric] >= floor", "        ok = scores[metric] > floor",
  ["tests/admod/test_blessing.py"], None),
 ("Q excluded files written with split 'train'", "admod/split.py",
  "            manifest.writerow({**row, \"uri\": csv_safe(row[\"uri\"])})",
  "            manifest.writerow({**row, \"split\": row[\"split\"] or \"train\", "
  "\"uri\": csv_safe(row[\"uri\"])})",
  ["tests/admod/test_split.py"], None),
 # issue 26: the calibrated score
 ("R1 the served probability left uncalibrated", "admod/serving.py",
  'return {"probability": _calibrated(raw, calibration), "label": label}',
  'return {"probability": raw, "label": label}',
  ["tests/admod/test_tf_serving_loader.py", "tests/admod/test_evaluate_push_steps.py"], None),
 ("R2 the label from the calibrated probability at the raw threshold", "admod/serving.py",
  "label = tf.where(raw >= raw_threshold,",
  "label = tf.where(_calibrated(raw, calibration) >= raw_threshold,",
  ["tests/admod/test_tf_serving_loader.py", "tests/admod/test_evaluate_push_steps.py"], None),
 ("R3 calibrated figures measured where the calibration was fitted", "admod/evaluation.py",
  'held_out, refused = calibration_lib.cross_fitted(labels, raw, method), ""',
  'held_out, refused = calibration.apply(raw), ""',
  ["tests/admod/test_calibration.py"], None),
 ("R4 temperature read as sklearn's beta (half the slope)", "admod/calibration.py",
  "slope, intercept = 2 * float(calibrator.beta_), 0.0",
  "slope, intercept = float(calibrator.beta_), 0.0",
  ["tests/admod/test_calibration.py"], None),
 ("R5 max_ece never read", "admod/blessing.py",
  "    for name, limit in sorted(maximums.items()):",
  "    for name, limit in sorted({}.items()):",
  ["tests/admod/test_blessing.py"], None),
 # issue 25: the merge bucket by bucket
 ("S1 buckets by the hash's suffix (not ranges of it)", "admod/split.py",
  "    return int(sha256[:8], 16) * BUCKETS >> 32",
  "    return int(sha256[-8:], 16) * BUCKETS >> 32",
  ["tests/admod/test_split.py"], None),
 ("S2 a bucket merged from the first partition only", "admod/split.py",
  "    folders = [(part, bucket_folder(d, bucket)) for part, d in enumerate(part_dirs)\n"
  "               if expected[part]]",
  "    folders = [(part, bucket_folder(d, bucket)) for part, d in enumerate(part_dirs[:1])\n"
  "               if expected[part]]",
  ["tests/admod/test_split.py"], None),
 ("S3 duplicates reported bucket by bucket, not in listing order", "admod/split.py",
  "    named = {reason: [uri for _, uri in heapq.nsmallest(\n        REPORTED_URIS, ",
  "    named = {reason: [uri for _, uri in list(\n        ",
  ["tests/admod/test_split.py"], None),
 # issue 25: the split's check at the speed of its floor
 ("S4 a record's checksum over its first piece only", "admod/records.py",
  "    for piece in pieces:\n        crc = google_crc32c.extend(crc, piece)",
  "    for piece in pieces[:1]:\n        crc = google_crc32c.extend(crc, piece)",
  ["tests/admod/test_records.py"], None),
 ("S5 a stored PNG's chunk checksum without the chunk's type", "admod/images.py",
  "    checksum = zlib_ng.crc32(data, zlib_ng.crc32(kind))",
  "    checksum = zlib_ng.crc32(data)",
  ["tests/admod/test_images.py"], None),
 ("S7 usable images counted as exclusions with no reason", "admod/split.py",
  '            if row["reason"] and row["reason"] not in MERGE_REASONS:',
  '            if row["reason"] not in MERGE_REASONS:',
  ["tests/admod/test_split.py"], None),
 ("S6 every check and merge process importing pandas", "admod/split.py",
  "if TYPE_CHECKING:  # imported where used",
  "if True:  # imported where used",
  ["tests/admod/test_split.py"], None),
 # issue 25: the merge fanned out over tasks
 ("S8 a merge-bucket task downloading every bucket of a part", "admod/split.py",
  "        storage.download_dir(storage.join(part_uri, name), os.path.join(scratch, name))",
  "        storage.download_dir(part_uri, scratch)",
  ["tests/admod/test_storage_gcs.py"], None),
 ("S9 the split's shards listed against bucket order", "admod/split_steps.py",
  '    shards = {name: [uri for r, _ in results for uri in r["shards"][name]]',
  '    shards = {name: [uri for r, _ in results[::-1] for uri in r["shards"][name]]',
  ["tests/admod/test_split.py"], None),
 ("S10 only the first merge-bucket task's rows in the manifest", "admod/split_steps.py",
  '            [os.path.join(d, BUCKET_ROWS) for _, d in results]\n',
  '            [os.path.join(d, BUCKET_ROWS) for _, d in results[:1]]\n',
  ["tests/admod/test_split.py"], None),
 # issue 39: the promises an independent set of planted bugs found unpinned
 ("T1 an image exactly at the threshold served allowed (> for >=)", "admod/serving.py",
  "label = tf.where(raw >= raw_threshold,", "label = tf.where(raw > raw_threshold,",
  ["tests/admod/test_tf_serving_loader.py"], None),
 ("T2 shards listed in directory order, not sorted", "admod/records.py",
  "    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, SHARD_PATTERN)))",
  "    return [os.path.basename(p) for p in glob.glob(os.path.join(folder, SHARD_PATTERN))]",
  ["tests/admod/test_split.py"], None),
 ("T3 a local file's fingerprint without its mtime", "admod/storage.py",
  'f"{found.st_mtime_ns}:{found.st_ctime_ns}"', 'f"{found.st_ctime_ns}"',
  ["tests/pipeline/test_cache_keys.py"], None),
 ("T4 a partition's fingerprint without the files' sizes", "admod/split.py",
  'digests[part].update(order_key(f"{uri}\\t{size}\\t{version}\\t{label}\\n"))',
  'digests[part].update(order_key(f"{uri}\\t{version}\\t{label}\\n"))',
  ["tests/pipeline/test_cache_keys.py"], None),
 ("T5 a gs:// object's metageneration for its version", "admod/storage.py",
  'str(blob.generation or "")', 'str(blob.metageneration or "")',
  ["tests/admod/test_storage_gcs.py"], None),
 ("T6 the split's last task counting bucket results, not checking which", "admod/split_steps.py",
  "    if twice or missing or unknown:", "    if len(results) != split.BUCKETS:",
  ["tests/admod/test_split.py"], None),
 ("T7 the split report's total off by one", "admod/reports.py",
  '    table.loc["total"] = table.sum()', '    table.loc["total"] = table.sum() + 1',
  ["tests/admod/test_evaluate_step.py"], None),
 ("T8 another run's bucket result taken", "admod/split_steps.py",
  '    foreign = [d for r, d in results if r.get("parts") != part_uris]', "    foreign = []",
  ["tests/admod/test_split.py"], None),
 # issue 36: failures in one sentence, nothing left behind
 ("U1 a shard cut cleanly ends in TensorFlow's traceback", "admod/datasets.py",
  "DAMAGED_SHARD = (tf.errors.DataLossError, tf.errors.FailedPreconditionError,",
  "DAMAGED_SHARD = (tf.errors.DataLossError,",
  ["tests/admod/test_bad_inputs.py"], None),
 ("U2 SIGTERM waits for each check process's whole partition", "admod/split.py",
  "            for process in list(self.pool._processes.values()):",
  "            for process in []:",
  ["tests/admod/test_split.py::test_an_interrupt_stops_the_check_processes_mid_partition"],
  None),
 ("U6 the check processes ignore SIGTERM", "admod/split.py",
  "initializer=interrupts.interrupt_on_sigterm)", "initializer=None)",
  ["tests/admod/test_split.py::test_an_interrupt_stops_the_check_processes_mid_partition"],
  None),
 ("U3 --out inside the data root accepted", "admod/split_steps.py",
  "    if storage.is_inside(out, data_root):", "    if False:",
  ["tests/admod/test_bad_inputs.py"], None),
 ("U4 a second split into the same --out not stopped", "admod/split_steps.py",
  "            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)", "            pass",
  ["tests/admod/test_bad_inputs.py"], None),
 ("U5 a full disk named as 'its output folder'", "admod/errors.py",
  "        raise OSError(errno.ENOSPC, \"No space left on device\", _fullest(folders)) from error",
  "        raise",
  ["tests/admod/test_bad_inputs.py"], None),
 # Issue 37: the typed step results
 ("V1 push stores part of the evaluation (Vertex never sees its intervals or slices)",
  "admod/steps.py", "dataclasses.replace(result, roc=None).to_json()",
  "{k: v for k, v in result.to_json().items() if k not in ('intervals', 'slices', 'roc')}",
  ["tests/admod/test_evaluate_push_steps.py::"
   "test_push_adds_the_version_to_the_vertex_model_with_its_lineage"], None),
 ("V2 an older version's missing raw threshold read as 0.5, not as its threshold",
  "admod/results.py",
  "        return cls(**{\"raw_threshold\": threshold, **_known(cls, data or {})})",
  "        return cls(**_known(cls, data or {}))",
  ["tests/admod/test_results.py"], None),
 ("V3 the key figure of fine-tune read from head's output",
  "pipeline/step_log.py", "    names.FINE_TUNE: (names.MODEL, _best_epoch),",
  "    names.FINE_TUNE: (names.METRICS, _best_epoch),",
  ["tests/pipeline/test_local_run.py"], None),
 ("R6 a model with one score for every image calibrated by temperature", "admod/calibration.py",
  "    _require_of_each_class(labels, 2)\n    _require_varying(probabilities)\n",
  "    _require_of_each_class(labels, 2)\n",
  ["tests/admod/test_calibration.py"], None),
 # Issue 38: what a user sees
 ("W1 TensorFlow's start-up lines reach predict's stderr", "admod/logs.py",
  "    os.dup2(devnull, 2)\n", "",
  ["tests/admod/test_serving_predict.py"], None),
 ("W2 --request-body imports TensorFlow", "pipeline/commands/serving.py",
  "    from admod.serving_request import request_body\n",
  "    from admod.predict import serving_request\n"
  "    request_body = serving_request.request_body\n",
  ["tests/admod/test_serving_predict.py"], None),
 # Issue 37: the decode traced once
 ("X1 the served decode starts before the pixel check (an oversized image is decoded)",
  "admod/decoding.py", "        with tf.control_dependencies([checked]):",
  "        with tf.control_dependencies([]):",
  ["tests/admod/test_decoding.py::test_no_decode_starts_before_the_pixel_check"], None),
 ("X2 a JPEG without EXIF reads its own bytes as up to 512 directory entries",
  "admod/decoding.py",
  "    count = tf.where(tiff >= 0, tf.minimum(_u16(b, ifd, little), 512), 0)",
  "    count = tf.minimum(_u16(b, ifd, little), 512)",
  ["tests/admod/test_decoding.py"], None),
]


def main(only: list[str]) -> None:
    for mutant in MUTANTS:
        if not only or mutant[0].split()[0] in only or mutant[0][0] in only:
            _plant(*mutant)


def _plant(name, path, old, new, tests, prepend):
    full = os.path.join(REPO, path)
    source = open(full).read()
    assert source.count(old) == 1, (name, old)
    mutated = source.replace(old, new)
    if prepend:
        mutated = prepend + mutated
    open(full, "w").write(mutated)
    try:
        runs = 15 if name.startswith("E") else 1
        failed_runs, failing = 0, set()
        for _ in range(runs):
            r = subprocess.run([PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                               cwd=REPO, capture_output=True, text=True)
            found = set(re.findall(r"^(?:FAILED|ERROR) (\S+)", r.stdout, re.M))
            failed_runs += r.returncode != 0
            failing |= found
        print(f"{name}: {failed_runs}/{runs} runs failed", flush=True)
        for t in sorted(failing):
            print(f"    {t}", flush=True)
    finally:
        open(full, "w").write(source)


if __name__ == "__main__":
    main(sys.argv[1:])
