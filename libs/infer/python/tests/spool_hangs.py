"""A module whose generate_segment blocks in time.sleep before its first
denoise step, for the tests of a stuck engine (the worker's stall
watchdog). A thread blocked in time.sleep is not interrupted by the run's
cancel flag, which the plugin reads only inside io calls: the run returns
only once the sleep ends. The prompt "sleep <seconds>" sets the sleep; any
other prompt sleeps an hour. After the sleep it carries on as
spool_numpy_ref, whose first io.progress ends a cancelled run."""

import time

import spool_numpy_ref


def info(params):
    return spool_numpy_ref.info(params)


def generate_segment(request, io):
    words = request["prompt"].split()
    seconds = float(words[1]) if len(words) == 2 and words[0] == "sleep" else 3600.0
    time.sleep(seconds)
    spool_numpy_ref.generate_segment(request, io)
