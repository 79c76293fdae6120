# An example Django view: the admin's "Download Excel" button points here;
# the view checks the user as usual and redirects the browser to exportd
# with a link signed for that user. Nothing is exported by Django itself.
from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect

from .exportd_link import exportd_link


@staff_member_required
def download_member_scores(request):
    return redirect(exportd_link(
        "/exports",                          # exportd behind the same nginx
        settings.EXPORTD_LINK_SECRET,        # = auth.link_secret of exportd
        "member_scores", "xlsx",
        {"from": request.GET.get("from", "2024-01-01")},
        request.user.get_username(),
        ["manager"],
        attrs={"branch": request.user.profile.branch},  # pinned for managers
        ttl=60,
    ))
