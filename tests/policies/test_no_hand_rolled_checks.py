"""Permission decisions live in policies/: no view or service in idp/ compares roles or hubs."""

import pathlib
import re

# Comparing a role or an actor's hub by hand is deciding a permission outside policies/.
HAND_ROLLED = re.compile(
    r"""(\.role\s*(==|!=|\bin\b|\bnot in\b))"""
    r"""|(\bin\s+\w+\.roles\b)"""
    r"""|(actor\.hub\s*(==|!=|\bin\b))"""
    r"""|(["'](owner|member|admin|agent)["']\s+(in|not in)\s+\w+\.roles)"""
)
DECIDING_MODULES = ("views.py", "service.py", "pages.py", "handlers.py", "screen.py")


def test_no_route_or_service_decides_a_permission_by_hand():
    offenders = []
    for path in sorted(pathlib.Path("idp").rglob("*.py")):
        if path.name not in DECIDING_MODULES:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if HAND_ROLLED.search(line):
                offenders.append(f"{path}:{number}: {line.strip()}")
    assert offenders == [], "ask policies/ instead:\n" + "\n".join(offenders)
