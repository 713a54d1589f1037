"""FID tables built from runs of their own, at smoke scale (for the tests) and paper scale: the request
(:mod:`.request`), the smoke build (:mod:`.build`), the paper-scale plan of commands (:mod:`.paper`) and the format
(:mod:`.format`)."""
