"""A module that reports the environment the plugin embeds, as an error.

generate_segment raises RuntimeError("prefix=... numpy=... foreign=[...]"):
sys.prefix, where numpy was imported from, and the sys.path entries that
are neither the standard library nor the prefix's (e.g. Debian's
dist-packages, the user's site directory, PYTHONPATH).
"""
import sys
import sysconfig


def info(params):
    return {"model_version": "environment-probe"}


def generate_segment(request, io):
    import numpy

    stdlib = sysconfig.get_paths()["stdlib"]
    extra = request.get("params", {}).get("path", "").split(":")
    foreign = [p for p in sys.path
               if p and not p.startswith(sys.prefix) and not p.startswith(stdlib)
               and not p.startswith(sys.base_prefix + "/lib/python") and p not in extra]
    raise RuntimeError("prefix=%s numpy=%s foreign=%s" % (sys.prefix, numpy.__file__, foreign))
