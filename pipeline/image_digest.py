"""A container image named by digest, not by a tag that can move.

Kubeflow Pipelines keys its cache on the image *reference* (backend/src/v2/cacheutils/cache.go,
2.17.0): a trainer rebuilt in place under the same tag gives cache hits that ran the old code,
and each pod pulls whatever the tag names when it starts. So `--image REGISTRY/PATH:TAG` is
resolved to REGISTRY/PATH:TAG@sha256:... through the registry's own API (the Docker Registry
HTTP API v2 that Artifact Registry, Docker Hub and every OCI registry serve: a HEAD of the
manifest, its Docker-Content-Digest), with a bearer token from the registry's token service,
signed in with Google's credentials for Artifact Registry and gcr.io, anonymously elsewhere.
"""

import re

from admod.errors import AdmodError

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
TIMEOUT_S = (3, 6)
# What a registry may hold under a tag: multi-platform indexes and single manifests, OCI and
# Docker's; the digest is of the one it returns.
MANIFESTS = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json"])
GOOGLE_REGISTRIES = (".pkg.dev", "gcr.io")
BY_TAG_FLAG = "--image-by-tag"


def is_pinned(reference: str) -> bool:
    return bool(DIGEST.search(reference))


def pinned(image: str | None, by_tag: bool = False) -> str | None:
    """`image` by digest: as given when it has one or when sent `by_tag`, else resolved
    through its registry (printed)."""
    if not image or by_tag or is_pinned(image):
        return image
    found = resolve(image)
    print(f"--image {image} is {found}")
    return found


def parts(reference: str) -> tuple[str, str, str]:
    """(registry host, repository, tag) of a reference, as Docker reads it: the first part is
    a registry when it has a '.' or ':' or is localhost, else Docker Hub (library/ for one
    name)."""
    name, _, tag = reference.rpartition(":") if ":" in reference.rsplit("/", 1)[-1] else (
        reference, "", "latest")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest, tag
    return "registry-1.docker.io", name if "/" in name else f"library/{name}", tag


def resolve(reference: str) -> str:
    """`reference` with the digest of what its tag names now; AdmodError when the registry
    cannot say (one sentence with the reason)."""
    import requests

    if is_pinned(reference):
        return reference
    registry, repository, tag = parts(reference)
    local = registry.split(":")[0] in ("localhost", "127.0.0.1")
    url = f"{'http' if local else 'https'}://{registry}/v2/{repository}/manifests/{tag}"
    try:
        reply = requests.head(url, headers={"Accept": MANIFESTS}, timeout=TIMEOUT_S)
        if reply.status_code == 401:
            token = _token(reply.headers.get("WWW-Authenticate", ""), registry)
            reply = requests.head(url, headers={"Accept": MANIFESTS,
                                                "Authorization": f"Bearer {token}"},
                                  timeout=TIMEOUT_S)
    except requests.exceptions.RequestException as error:
        raise _unresolved(reference, f"{registry} did not answer: {type(error).__name__}") \
            from None
    if reply.status_code == 404:
        raise _unresolved(reference, f"{registry} has no tag '{tag}' in {repository}")
    if reply.status_code in (401, 403):
        raise _unresolved(reference, f"{registry} refused our credentials "
                                     f"(HTTP {reply.status_code})")
    digest = reply.headers.get("Docker-Content-Digest", "")
    if reply.status_code != 200 or not digest.startswith("sha256:"):
        raise _unresolved(reference, f"{registry} answered HTTP {reply.status_code} without a "
                                     "digest")
    return f"{reference}@{digest}"


def _unresolved(reference: str, reason: str) -> AdmodError:
    return AdmodError(f"--image '{reference}' is a tag that can move and its digest could not "
                      f"be read ({reason}): pass the image by digest (REF@sha256:..., which "
                      f"`make images` and `make image-local` print), or {BY_TAG_FLAG} to run "
                      "whatever the tag names when each pod starts.")


def _token(challenge: str, registry: str) -> str:
    """A pull token from the registry's token service named in its 401 challenge
    (Bearer realm="...",service="...",scope="...")."""
    import requests

    fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    if not challenge.lower().startswith("bearer") or "realm" not in fields:
        raise AdmodError(f"{registry} asked for an authentication admod does not speak "
                         f"('{challenge[:80]}'): pass the image by digest.")
    params = {name: fields[name] for name in ("service", "scope") if name in fields}
    auth = _google_login() if registry.endswith(GOOGLE_REGISTRIES) else None
    reply = requests.get(fields["realm"], params=params, auth=auth, timeout=TIMEOUT_S)
    if reply.status_code != 200:
        return ""  # the manifest's HEAD is then refused, and says so
    body = reply.json()
    return body.get("token") or body.get("access_token") or ""


def _google_login():
    """('oauth2accesstoken', an access token) from Google's default credentials, as docker's
    credential helper for Artifact Registry sends; None without credentials."""
    import google.auth
    import google.auth.transport.requests
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _ = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"])
        credentials.refresh(google.auth.transport.requests.Request())
    except DefaultCredentialsError:
        return None
    return "oauth2accesstoken", credentials.token
