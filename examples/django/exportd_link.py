import hashlib
import hmac
import time
from urllib.parse import quote, urlencode


def exportd_link(base_url, secret, dataset, fmt, params, user, roles,
                 attrs=None, purpose=None, purpose_text=None, ttl=300):
    """Return a link to one exportd download, signed for user.

    The link grants exactly this export (dataset, format, params) to user
    with roles until ttl seconds from now; exportd refuses it (403) when
    anything in it is changed. attrs fill parameters pinned to attributes
    (e.g. {"branch": "부산"}); purpose and purpose_text carry the reason for
    the download that the application collected.
    """
    pairs = []
    for key, value in params.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            pairs.append((key, str(v)))
    pairs.append(("link.sub", user))
    if roles:
        pairs.append(("link.roles", ",".join(roles)))
    for key, value in (attrs or {}).items():
        pairs.append(("link.attr." + key, str(value)))
    if purpose:
        pairs.append(("link.purpose", purpose))
    if purpose_text:
        pairs.append(("link.purpose_text", purpose_text))
    pairs.append(("link.exp", str(int(time.time()) + ttl)))
    query = urlencode(sorted(pairs))
    message = "exportd-link-v1\n%s\n%s\n%s" % (dataset, fmt, query)
    sig = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return "%s/v1/datasets/%s/export.%s?%s&link.sig=%s" % (
        base_url.rstrip("/"), quote(dataset), fmt, query, sig)
