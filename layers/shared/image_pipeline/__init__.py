"""Code shared by the image pipeline's functions (deployed as a Lambda layer)."""
