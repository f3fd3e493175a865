"""imgpipe: the image pipeline from a terminal (upload, watch, browse, trace, delete)."""
