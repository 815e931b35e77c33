"""A module whose generate_segment fails, to test tracebacks."""


def _inner(frames):
    raise ValueError("the model ran out of ideas at frame %d" % frames)


def generate_segment(request, io):
    io.progress(1, request["steps"])
    _inner(request["frames"])
