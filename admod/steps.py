"""One function per pipeline step: read the step's inputs, call the logic, write its outputs.

Paths only, no KFP: the components in components/ pass their artifacts' paths here and copy the
returned figures into artifact metadata. Each step also writes those figures as JSON next to
its outputs, so they travel with the artifacts.
"""

import dataclasses
import hashlib
import logging
import os
import shutil
import tempfile

import keras
import pandas as pd

from admod import (accelerators, augment, blessing, datasets, defaults, evaluation, records,
                   registry, reports, results, serving, slices, storage, training, uncertainty,
                   vertex_experiments, vertex_registry, vertex_targets)
from admod.results import CalibrationFacts, Evaluation, ModelInfo, PhaseSummary
from admod.metric_names import HEADLINE, PHASE_METRICS, SCORES
from admod.calibration import Calibration
from admod.options import EvaluationOptions, ImageRules, TrainingOptions
from admod.errors import AdmodError, brief, google_cloud_errors
from admod import model as model_lib

log = logging.getLogger(__name__)


# --- training ------------------------------------------------------------------------------

def _train(model, phase: str, train_dir, val_dir, image_size, options: TrainingOptions,
           setup: accelerators.Setup, model_dir, initial_epoch: int = 0,
           baseline: float | None = None) -> dict:
    info = records.read_info(train_dir)
    counts = [info["class_counts"][n] for n in defaults.CLASS_NAMES]
    weights = training.class_weights(counts, options.class_weighting,
                                     options.class_weight_minority_share)
    global_batch = options.batch_size * setup.replicas
    # Over several replicas a short last batch splits unevenly, down to an empty batch on a
    # replica (a crash where it was measured, TensorFlow's CPU kernels): training drops it.
    drop_remainder = setup.replicas > 1
    if drop_remainder and info["count"] < global_batch:
        raise AdmodError(f"The training split has {info['count']} images, fewer than one "
                         f"global batch ({options.batch_size} x {setup.replicas} replicas): "
                         "lower batch_size or add images.")
    # A file cache, when the images do not fit in memory, goes to the pod's local disk: a new
    # folder per attempt (no stale lock from a preempted one), never the artifact folder.
    with tempfile.TemporaryDirectory(prefix="admod-cache-") as cache_dir:
        train_ds = datasets.make_dataset(train_dir, image_size, global_batch, training=True,
                                         augment_config=options.augmentation,
                                         seed=augment.phase_seed(options.seed, phase),
                                         cache_dir=cache_dir, drop_remainder=drop_remainder)
        val_ds = datasets.make_dataset(val_dir, image_size, global_batch, training=False)
        with datasets.damaged_shards_named(train_dir, val_dir):
            history = training.train_phase(model, train_ds, val_ds, options, phase, model_dir,
                                           weights, initial_epoch, jit_compile=setup.xla,
                                           baseline=baseline)
    model.save(os.path.join(model_dir, registry.MODEL_FILE))
    return {**training.summarise(history), "phase": phase, "global_batch_size": global_batch,
            "last_short_batch_dropped": drop_remainder,
            "class_weights": {defaults.CLASS_NAMES[k]: v for k, v in (weights or {}).items()},
            **setup.facts()}


def _save_reports(model_dir, report_path, summary: PhaseSummary, previous_history=None):
    history = training.read_history(model_dir, summary.phase)
    if previous_history is not None:
        history = pd.concat([previous_history, history], ignore_index=True)
    with open(report_path, "w") as f:
        f.write(reports.training_html(history, summary))
    storage.write_json_file(os.path.join(model_dir, registry.MODEL_INFO_FILE), summary.to_json())


def train_head_step(*, train_dir: str, val_dir: str, model_dir: str, report_path: str,
                    image_size: int, weights: str, options: TrainingOptions,
                    allow_random_init: bool = False) -> PhaseSummary:
    setup = accelerators.configure(options.mixed_precision, options.xla, options.require_gpu)
    keras.utils.set_random_seed(options.seed)  # the same initial head for the same seed
    with setup.strategy.scope():
        model, source = model_lib.build_model(image_size, weights,
                                              allow_random_init=allow_random_init)
        figures = _train(model, "head", train_dir, val_dir, image_size, options, setup,
                         model_dir)
    summary = PhaseSummary(**figures, **_model_facts(image_size, source), unfreeze=None)
    _save_reports(model_dir, report_path, summary)
    return summary


def phase_outputs(summary: PhaseSummary, model_uri: str) -> tuple[dict, dict]:
    """What a training step's artifacts show: the model's metadata (the summary, and the
    folder to give `tensorboard --logdir`) and the figures of its metrics."""
    metadata = {**summary.to_json(),
                "tensorboard_logdir": training.tensorboard_logdir(f"{model_uri}/tensorboard")}
    return metadata, {name: getattr(summary, name) for name in PHASE_METRICS}


def fine_tune_step(*, head_dir: str, train_dir: str, val_dir: str, model_dir: str,
                   report_path: str, unfreeze: str, options: TrainingOptions) -> PhaseSummary:
    head = results.read(PhaseSummary, os.path.join(head_dir, registry.MODEL_INFO_FILE))
    setup = accelerators.configure(options.mixed_precision, options.xla, options.require_gpu)
    keras.utils.set_random_seed(options.seed)
    with setup.strategy.scope():
        model = model_lib.load(os.path.join(head_dir, registry.MODEL_FILE))
        trainable = model_lib.unfreeze(model, unfreeze)
        log.info("unfroze %s: %d base weights trainable", unfreeze, trainable)
        # Fine-tuning starts from the head's best val_loss: it must beat it to be kept.
        figures = _train(model, "fine_tune", train_dir, val_dir, head.image_size, options,
                         setup, model_dir, initial_epoch=head.last_epoch,
                         baseline=head.best_val_loss)
    summary = PhaseSummary(**figures, **_model_facts(head.image_size, head.weights_source),
                           unfreeze=unfreeze, head_epochs_run=head.epochs_run)
    summary = _keep_the_better_phase(summary, head, head_dir, model_dir)
    _save_reports(model_dir, report_path, summary, training.read_history(head_dir, "head"))
    return summary


def _keep_the_better_phase(summary: PhaseSummary, head: PhaseSummary, head_dir: str,
                           model_dir: str) -> PhaseSummary:
    """When no fine-tuning epoch beat the head's best val_loss, the head's model is the step's
    model: fine-tuning never hands evaluate something worse than it started from. Returns
    `summary` saying which phase's weights were kept and their val_loss."""
    if summary.best_val_loss < head.best_val_loss:
        return dataclasses.replace(summary, weights_kept="fine_tune",
                                   kept_val_loss=summary.best_val_loss)
    log.warning("no fine-tuning epoch beat the head's best val_loss %.4f (fine-tuning's best "
                "%.4f): the head's weights are kept", head.best_val_loss, summary.best_val_loss)
    shutil.copyfile(os.path.join(head_dir, registry.MODEL_FILE),
                    os.path.join(model_dir, registry.MODEL_FILE))
    return dataclasses.replace(summary, weights_kept="head", kept_val_loss=head.best_val_loss)


def _model_facts(image_size: int, weights_source: str) -> dict:
    return {"image_size": image_size, "class_names": defaults.CLASS_NAMES,
            "positive_class": defaults.POSITIVE_CLASS, "preprocessing": model_lib.PREPROCESSING,
            "weights_source": weights_source}


# --- evaluation ----------------------------------------------------------------------------

def _score(model, folder: str, image_size: int, batch_size: int) -> pd.DataFrame:
    """One row per image of `folder`: uri, label, probability of not allowed."""
    ds = datasets.make_dataset(folder, image_size, batch_size, training=False)
    with datasets.damaged_shards_named(folder):
        labels, uris = datasets.labels_and_uris(folder)
        probabilities = model.predict(ds, verbose=0).ravel().astype(float)
    return pd.DataFrame({"uri": uris, "label": labels, "probability": probabilities})


def _champion(registry_root: str, headline_dir: str, batch_size: int):
    """(champion version, its scores on the headline images as it serves them, those images
    as it serves them) or (None, None, None)."""
    champion = model_lib.load_champion(registry_root)
    if champion is None:
        return None, None, None
    info = champion.info
    scored = _score(champion.model, headline_dir, info.image_size, batch_size)
    served = _as_served(scored, Calibration.of(info.calibration),
                        info.calibration.raw_threshold)
    return champion.version, _scores(served, info.threshold), served


def _for_bootstrap(served: pd.DataFrame, held_out=None) -> uncertainty.Scored:
    return uncertainty.Scored.of(served["label"], served["probability"], served["decision"],
                                 held_out)


OPTIMISTIC = ("Optimistic: these figures come from the validation images that also chose the "
              "best epoch, the threshold and the calibration; set test_fraction (e.g. 0.1) for "
              "figures on images nothing was chosen on.")


def _as_served(scored: pd.DataFrame, calibration: Calibration,
               raw_threshold: float) -> pd.DataFrame:
    """`scored` with the probability the model serves (calibrated; the raw one beside it) and
    the label it serves (1: not allowed), decided by the raw score at the raw threshold."""
    return scored.assign(raw_probability=scored["probability"],
                         probability=calibration.apply(scored["probability"]),
                         decision=(scored["probability"] >= raw_threshold).astype(int))


def _scores(served: pd.DataFrame, threshold: float) -> dict:
    return evaluation.classification_metrics(served["label"], served["probability"], threshold,
                                             predicted=served["decision"])


def evaluate_step(*, model_dir: str, val_dir: str, test_dir: str, registry_root: str,
                  metrics_path: str, predictions_path: str, report_path: str,
                  options: EvaluationOptions, manifest_path: str | None = None) -> Evaluation:
    """Scores the held-out images, calibrates the score and chooses the operating threshold on
    validation, compares with the champion and decides. Headline figures come from test when
    it has images; calibration figures (Brier, ECE) always from images the calibration was not
    fitted on (test, or validation's held-out folds)."""
    accelerators.check_gpu(options.require_gpu, accelerators.accelerator_devices())
    info = results.read(PhaseSummary, os.path.join(model_dir, registry.MODEL_INFO_FILE))
    model = model_lib.load(os.path.join(model_dir, registry.MODEL_FILE))
    validation = _score(model, val_dir, info.image_size, options.batch_size)
    _require_both_classes(validation, "validation")
    point = evaluation.operating_point(validation["label"], validation["probability"],
                                       options.calibration, options.threshold_rule,
                                       options.threshold_target)
    use_test = records.read_info(test_dir)["count"] > 0
    headline_dir = test_dir if use_test else val_dir
    headline = (_score(model, test_dir, info.image_size, options.batch_size) if use_test
                else validation)
    _require_both_classes(headline, "test" if use_test else "validation")
    headline = _as_served(headline, point.calibration, point.raw_threshold)
    # Calibration figures on probabilities the calibration was not fitted on: test's, or
    # validation's from the fits on its other folds.
    headline["held_out_probability"] = (headline["probability"] if use_test
                                        else point.held_out)
    labels, probabilities = headline["label"], headline["probability"]
    calibrated = evaluation.calibration_scores(labels, headline["held_out_probability"])
    scores = {**_scores(headline, point.threshold), **calibrated}
    raw = evaluation.calibration_scores(labels, headline["raw_probability"])
    champion, champion_scores, champion_served = _champion(registry_root, headline_dir,
                                                           options.batch_size)
    evidence = _evidence(headline, champion_served, options,
                         manifest_path, "test" if use_test else "validation")
    decision = blessing.decide(scores, options.blessing, champion_scores, champion,
                               refusals=[point.refused] if point.refused else [],
                               evidence=evidence)
    result = Evaluation(
        split="test" if use_test else "validation", threshold=point.threshold,
        threshold_rule=point.rule, scores=scores, intervals=evidence.intervals,
        interval_level=uncertainty.LEVEL, resamples=uncertainty.RESAMPLES,
        champion_differences=evidence.differences, slices=evidence.slices,
        optimistic="" if use_test else OPTIMISTIC,
        scores_at_0_5={**evaluation.classification_metrics(labels, probabilities, 0.5),
                       **calibrated},
        calibration=CalibrationFacts(**point.facts(), brier_raw=raw["brier"],
                                     ece_raw=raw["ece"]),
        champion=champion, champion_scores=champion_scores,
        blessed=decision.blessed, reasons=decision.reasons,
        roc=evaluation.roc_points(labels, probabilities), model=info)
    storage.write_json_file(metrics_path, result.to_json())
    os.makedirs(os.path.dirname(predictions_path) or ".", exist_ok=True)
    _write_predictions(headline, result.split, predictions_path)
    gallery = _confidently_wrong(headline, headline_dir, options.gallery_size)
    table = evaluation.threshold_table(labels, probabilities, point.threshold)
    with open(report_path, "w") as f:
        f.write(reports.evaluation_html(result, headline, table, gallery))
    _log_evaluation(result)
    return result


def _write_predictions(headline: pd.DataFrame, split_name: str, path: str) -> None:
    """One row per image: its uri, actual label, the served and raw probabilities and the
    model's decision (0/1 and by name), the split."""
    names = pd.Series(defaults.CLASS_NAMES)
    headline.drop(columns=["held_out_probability"]).rename(
        columns={"decision": "predicted_label"}).assign(
        actual_class=names[headline["label"]].values,
        predicted_class=names[headline["decision"]].values,
        split=split_name, uri=headline["uri"].map(reports.csv_safe)).to_csv(path, index=False)


def evaluation_outputs(result: Evaluation) -> tuple[dict, dict]:
    """What evaluate's metrics artifact shows: its metadata (the decision) and its figures
    (each score, its 95% interval's ends as <name>_low and <name>_high, the raw score's ECE)."""
    figures = {name: value for name, value in result.scores.items() if isinstance(value, float)}
    for name, (low, high) in result.intervals.items():
        figures.update({f"{name}_low": low, f"{name}_high": high})
    figures["ece_raw"] = result.calibration.ece_raw
    return {"blessed": result.blessed, "reasons": result.reasons,
            "champion": result.champion or "", "split": result.split,
            "calibration": result.calibration.method, "optimistic": result.optimistic}, figures


def _evidence(headline: pd.DataFrame, champion_served: pd.DataFrame | None,
              options: EvaluationOptions, manifest_path: str | None,
              split_name: str) -> blessing.Evidence:
    """The figures' intervals, the paired differences with the champion and the slices:
    each from the same bootstrap resamples of the headline images."""
    challenger = _for_bootstrap(headline, headline["held_out_probability"])
    champion = None if champion_served is None else _for_bootstrap(champion_served)
    evidence = blessing.Evidence(intervals=uncertainty.intervals(challenger))
    if champion is not None:
        evidence.differences = uncertainty.paired_differences(challenger, champion)
    if manifest_path:
        facts = slices.manifest_facts(manifest_path, split_name)
        missing = set(headline["uri"].map(reports.csv_safe)) - set(facts.index)
        if missing:
            raise AdmodError(f"The split's manifest '{manifest_path}' does not list "
                             f"{len(missing)} of the {split_name} images (e.g. "
                             f"'{sorted(missing)[0]}'): evaluate the split it came with.")
        facts = facts.loc[headline["uri"].map(reports.csv_safe)].reset_index(drop=True)
        evidence.slices = [s.to_json() for s in slices.evaluate_slices(
            facts, challenger, champion, options.blessing.gating_metric,
            options.blessing.min_slice_size)]
    return evidence


def _require_both_classes(scored: pd.DataFrame, split_name: str) -> None:
    """ROC-AUC, PR-AUC and a threshold rule need both classes: with one, refuse rather than
    write NaN into the metrics or bless on an undefined figure."""
    present = sorted(set(scored["label"]))
    if len(present) < 2:
        only = defaults.CLASS_NAMES[present[0]] if present else "no"
        raise AdmodError(f"The {split_name} split holds {only} images only, so ROC-AUC and the "
                         "threshold are undefined: split again with images of both classes "
                         "there (or a larger val_fraction/test_fraction).")


def _confidently_wrong(scored: pd.DataFrame, folder: str, count: int) -> list:
    wrong = scored[scored["decision"] != scored["label"]]
    worst = (wrong["probability"] - wrong["label"]).abs().sort_values(ascending=False).head(count)
    data = datasets.image_bytes_at(folder, set(worst.index))
    return [(data[i], scored.loc[i, "uri"], int(scored.loc[i, "label"]),
             float(scored.loc[i, "probability"])) for i in worst.index]


def _log_evaluation(result: Evaluation) -> None:
    scores, calibration = result.scores, result.calibration
    log.info("%s at threshold %.4f (%s): %s", result.split, result.threshold,
             result.threshold_rule,
             {k: round(v, 4) for k, v in scores.items() if isinstance(v, float)})
    log.info("calibration %s (slope %.4g, intercept %.4g)%s: ECE %.4f, raw %.4f",
             calibration.method, calibration.slope, calibration.intercept,
             f", refused: {calibration.refused}" if calibration.refused else "",
             scores["ece"], calibration.ece_raw)
    log.info("confusion matrix:\n%s",
             evaluation.format_confusion_matrix(scores["confusion_matrix"]))
    log.info("decision: %s (%s)", "blessed" if result.blessed else "not blessed",
             "; ".join(result.reasons))


# --- push ----------------------------------------------------------------------------------

def push_step(*, model_dir: str, evaluation_path: str, train_dir: str, val_dir: str,
              registry_root: str, run_id: str, staging_dir: str,
              vertex: vertex_targets.ModelTarget | None = None, vertex_api=None) -> dict:
    """Publishes the model (SavedModel for serving, .keras, metrics, model card) as a new
    registry version and makes it the champion, then, with `vertex`, as a version of that
    Vertex AI model (through `vertex_api`, default a client for its location); returns the
    version's uri and what the UI shows of it."""
    result = results.read(Evaluation, evaluation_path)
    data = {"train": records.read_info(train_dir), "validation": records.read_info(val_dir)}
    max_pixels = data["train"].get("max_image_pixels", ImageRules.max_image_pixels)
    lineage = {"pipeline_run_id": run_id, "data_fingerprint": data["train"].get("data_fingerprint"),
               "parent_champion": result.champion}
    summary = results.read(PhaseSummary, os.path.join(model_dir, registry.MODEL_INFO_FILE))
    info = ModelInfo.pushed(summary, result, max_pixels, lineage)
    calibration = Calibration.of(result.calibration)
    model = model_lib.load(os.path.join(model_dir, registry.MODEL_FILE))
    os.makedirs(staging_dir, exist_ok=True)
    serving.export(model, info.image_size, result.calibration.raw_threshold,
                   os.path.join(staging_dir, registry.SAVED_MODEL_DIR, registry.SERVING_VERSION),
                   max_pixels, calibration)
    shutil.copy(os.path.join(model_dir, registry.MODEL_FILE), staging_dir)
    storage.write_json_file(os.path.join(staging_dir, registry.MODEL_INFO_FILE), info.to_json())
    # The whole evaluation but its ROC points (the UI's curve, from evaluate's artifact)
    storage.write_json_file(os.path.join(staging_dir, registry.METRICS_FILE),
                            dataclasses.replace(result, roc=None).to_json())
    with open(os.path.join(staging_dir, registry.MODEL_CARD_FILE), "w") as f:
        f.write(reports.model_card(info, result, data, lineage))
    # The version's identity is what it serves (its weights, threshold, input size and
    # calibration), not the bytes of its exports, which differ between two exports of one model.
    # Without calibration, the key versions had before calibration existed.
    identity = f"{model_lib.weights_digest(model)}|{result.threshold!r}|{info.image_size}"
    if calibration.method != "none":
        identity += f"|{calibration!r}"
    uri, new = registry.push(staging_dir, registry_root, expected_champion=result.champion,
                             key=hashlib.sha256(identity.encode()).hexdigest())
    version = os.path.basename(uri.rstrip("/"))
    published = {}
    if vertex is not None:
        published["vertex_model_version"] = vertex_registry.publish(registry_root, version,
                                                                    vertex, vertex_api)
    return {"uri": uri, "version": version, "new_version": new, **published,
            "champion": registry.champion(registry_root) == version,
            "threshold": result.threshold, "evaluated_on": result.split,
            **{name: result.scores[name] for name in HEADLINE},
            **lineage, "parent_champion": result.champion or ""}


# --- log-experiment ------------------------------------------------------------------------

def log_experiment_step(*, parameters_path: str, evaluation_path: str, head_dir: str,
                        fine_tune_dir: str, target: vertex_targets.ExperimentTarget, run_id: str,
                        vertex_init: dict | None = None) -> str:
    """The run's parameters, its final metrics (evaluation and both training phases) and its
    per-epoch curves, logged to a Vertex AI Experiment; returns the experiment run's name.
    `vertex_init` goes to aiplatform.init (credentials, endpoint)."""
    result = results.read(Evaluation, evaluation_path)
    metrics = {name: result.scores[name] for name in SCORES}
    metrics.update(threshold=result.threshold, blessed=int(result.blessed),
                   ece_raw=result.calibration.ece_raw)
    histories = []
    for phase, folder in (("head", head_dir), ("fine_tune", fine_tune_dir)):
        info = results.read(PhaseSummary, os.path.join(folder, registry.MODEL_INFO_FILE))
        metrics.update({f"{phase}_{name}": getattr(info, name) for name in PHASE_METRICS})
        histories.append(training.read_history(folder, phase))
    try:
        parameters = storage.read_json(parameters_path)
        return vertex_experiments.log_run(target, run_id, parameters, metrics,
                                          pd.concat(histories, ignore_index=True),
                                          **(vertex_init or {}))
    # The SDK wraps some service failures in RuntimeError ("could not be found or created").
    except (*google_cloud_errors(), RuntimeError) as error:
        raise AdmodError(
            f"Logging run {run_id} to the Vertex AI Experiment '{target.experiment}' failed: "
            f"{brief(error)}. The model and the registry are not "
            "affected; retry the step, or check the service account's aiplatform.user role.") \
            from error
