"""A layer module (goes to python/ in the layer zip)."""


def shout(text: str) -> str:
    return text.upper() + "!"
