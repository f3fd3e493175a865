"""Write a sample photo for the demo: 4000x3000 JPEG, stored sideways with EXIF orientation 6 and GPS tags.

Usage: python scripts/sample_image.py OUT.jpg
"""

import sys

from PIL import Image, ImageDraw


def main(out: str) -> None:
    w, h = 3000, 4000  # stored sideways: upright it is 4000x3000 (orientation 6 = rotate 90° clockwise to view)
    im = Image.merge(
        "RGB",
        [
            Image.linear_gradient("L").resize((w, h)),
            Image.radial_gradient("L").resize((w, h)),
            Image.linear_gradient("L").rotate(90).resize((w, h)),
        ],
    )
    draw = ImageDraw.Draw(im)
    for i in range(12):
        draw.ellipse((200 + i * 200, 300 + i * 250, 900 + i * 200, 1000 + i * 250), outline=(255, 255, 255), width=25)
    draw.rectangle((0, 0, 600, 600), fill=(220, 30, 30))  # marks the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "image-pipeline demo"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    im.save(out, "JPEG", quality=90, exif=exif.tobytes())


if __name__ == "__main__":
    main(sys.argv[1])
