"""Scoring with a registry model here (predict), and serving it on KServe (serve-manifest)."""

import csv
import json
import sys

from admod import defaults, logs
from admod.errors import AdmodError


def add(commands) -> None:
    add_predict(commands)
    add_serve_manifest(commands)


def add_predict(commands) -> None:
    p = commands.add_parser("predict", help="score images with the champion or a version (CSV)")
    p.add_argument("--model", help="a registry_root (its champion) or one of its version folders")
    p.add_argument("--request-body", action="store_true",
                   help="print, instead of scores, the JSON body to POST to a TF Serving, KServe "
                        "or Vertex AI endpoint for these images (no --model needed)")
    p.add_argument("inputs", nargs="+", help="image files, folders or gs:// prefixes")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=predict_command)


def predict_command(args) -> int:
    if args.request_body:
        return _print_request_body(args.inputs)
    if not args.model:
        raise AdmodError("--model is missing: pass a registry_root (its champion) or one of its "
                         "version folders, or --request-body to print a request without scoring.")
    # TensorFlow only now: --request-body and a missing --model need none of it
    from admod.reports import csv_safe

    with logs.native_stderr_silenced():  # what importing TensorFlow writes
        from admod.predict import predict

    writer = csv.writer(sys.stdout)
    writer.writerow(["uri", "probability", "label"])
    failed = 0
    for uri, probability, label in predict(args.model, args.inputs, args.batch_size):
        if probability is None:
            failed += 1
            print(f"admod: cannot score {uri}: {label}", file=sys.stderr)
        else:
            writer.writerow([csv_safe(uri), f"{probability:.6f}", label])
    return 2 if failed else 0


def _print_request_body(inputs: list[str]) -> int:
    from admod.serving_request import request_body

    body, refused = request_body(inputs)
    for uri, reason in refused:
        print(f"admod: cannot score {uri}: {reason} (left out of the request)", file=sys.stderr)
    if not body["instances"]:
        raise AdmodError("None of the inputs can be scored: nothing to put in a request.")
    json.dump(body, sys.stdout)
    print()
    return 2 if refused else 0


def add_serve_manifest(commands) -> None:
    p = commands.add_parser("serve-manifest", help="a KServe InferenceService (YAML) serving "
                            "the champion or a version: pipe it to 'kubectl apply -f -'")
    p.add_argument("--model", required=True,
                   help="a gs:// registry_root (its champion) or one of its version folders")
    p.add_argument("--name", default="admod-ad-classifier")
    p.add_argument("--namespace", default="", help="default: kubectl's current namespace")
    p.add_argument("--runtime-version", default=defaults.TF_SERVING_VERSION,
                   help="the tensorflow/serving image tag KServe runs (default %(default)s; "
                        "KServe's own default, 2.6.2, cannot load the model)")
    p.set_defaults(func=serve_manifest_command)


def serve_manifest_command(args) -> None:
    import yaml

    from admod import kserve

    manifest = kserve.inference_service(args.model, args.name, args.namespace,
                                        args.runtime_version)
    print(f"# served by TF Serving {args.runtime_version} (runtimeVersion: the "
          f"tensorflow/serving:{args.runtime_version} image), not KServe's default 2.6.2, which "
          "cannot load the model")
    print(yaml.safe_dump(manifest, sort_keys=False), end="")
